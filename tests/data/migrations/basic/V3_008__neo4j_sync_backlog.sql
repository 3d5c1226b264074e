-- Version 3.008, as the v2.0 runbook names it: the Neo4j sync backlog.
CREATE TABLE neo4j_sync_backlog (
    id bigserial PRIMARY KEY,
    entity text NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX neo4j_sync_backlog_created_idx ON neo4j_sync_backlog (created_at);
