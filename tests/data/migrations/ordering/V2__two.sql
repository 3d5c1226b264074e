INSERT INTO applied_order (version) VALUES ('2');
