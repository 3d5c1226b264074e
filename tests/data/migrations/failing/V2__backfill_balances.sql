-- The second statement names a column that does not exist (line 5).
INSERT INTO accounts (id, balance) VALUES (1, 10), (2, 20);

UPDATE accounts
   SET balance = balance + bonus
 WHERE id > 0;
