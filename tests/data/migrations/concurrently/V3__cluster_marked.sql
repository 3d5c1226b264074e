-- cockpit:no-transaction
-- CLUSTER without a table can't run in a transaction block and is not detected:
-- the line above says so.
CREATE TABLE cluster_marker (id int);
CLUSTER;
