-- Undoes V3_007: removes the core tables. Only for a database that V3_007 created
-- (sandbox, rehearsal, tests); a database baselined at 3.007 refuses to undo it.
DROP TABLE opportunities;
DROP TABLE signals;
DROP TABLE users;
DROP FUNCTION set_updated_at();
