DROP TABLE neo4j_sync_backlog;
