CREATE TABLE events (
    id bigserial PRIMARY KEY,
    kind text NOT NULL
);
INSERT INTO events (kind) SELECT 'kind-' || g % 7 FROM generate_series(1, 500) AS g;
