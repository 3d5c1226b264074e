CREATE TABLE applied_order (n serial PRIMARY KEY, version text NOT NULL);
INSERT INTO applied_order (version) VALUES ('1');
