-- Built without blocking writes: PostgreSQL refuses this inside a transaction block,
-- so the file runs outside one (detected, as Flyway detects it).
CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);
