CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    version TEXT,
    runbook_path TEXT,
    runbook_sha256 TEXT,
    environment TEXT,
    operator TEXT,
    host TEXT,
    status TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    message TEXT,
    output_dir TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    phase TEXT,
    title TEXT,
    kind TEXT,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    duration REAL,
    exit_code INTEGER,
    message TEXT,
    output_path TEXT,
    output_lines INTEGER NOT NULL DEFAULT 0,
    excerpt TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS checklist (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item TEXT,
    ticked INTEGER NOT NULL,
    by TEXT,
    at REAL,
    note TEXT,
    PRIMARY KEY (run_id, step_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at REAL NOT NULL,
    type TEXT NOT NULL,
    step_id TEXT,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, id);
