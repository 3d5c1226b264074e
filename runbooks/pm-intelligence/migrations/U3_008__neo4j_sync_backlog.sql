-- Undoes V3_008. Pending backlog rows are lost: drain the backlog first.
DROP FUNCTION neo4j_breaker_record(text, boolean, text);
DROP FUNCTION neo4j_breaker_state(text);
DROP TABLE neo4j_circuit_breaker;
DROP TABLE neo4j_sync_backlog;
