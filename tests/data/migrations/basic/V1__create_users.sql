-- Users of the platform.
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    name text NOT NULL
);
