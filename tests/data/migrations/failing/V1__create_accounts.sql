CREATE TABLE accounts (
    id int PRIMARY KEY,
    balance numeric NOT NULL DEFAULT 0
);
