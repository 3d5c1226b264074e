INSERT INTO applied_order (version) VALUES ('1.1');
