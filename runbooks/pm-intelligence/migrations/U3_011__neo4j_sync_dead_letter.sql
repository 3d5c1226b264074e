-- Undoes V3_011. Unresolved dead letters are lost: export or replay them first.
DROP FUNCTION neo4j_backlog_dead_letter();
DROP TABLE neo4j_sync_dead_letter;
