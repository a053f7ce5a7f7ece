-- The event store on SQLite: one file per store. Times are microseconds since the Unix epoch (UTC). Positions are the rowid of `events`: one writer at a time
-- (BEGIN IMMEDIATE), so rowids are taken in commit order and the global order has no gaps a reader could pass.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id       TEXT NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    event_id        BLOB NOT NULL UNIQUE,
    event_type      TEXT NOT NULL CHECK (event_type <> ''),
    schema_version  INTEGER NOT NULL CHECK (schema_version >= 1),
    payload         TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_type_version ON events (event_type, schema_version, global_position);

CREATE TABLE snapshots (
    stream_id      TEXT NOT NULL,
    snapshot_type  TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    stream_version INTEGER NOT NULL,
    state          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (stream_id, snapshot_type)
);

-- Both halves of a checkpoint's position, kept exactly (a reader of another store may checkpoint here too).
CREATE TABLE checkpoints (
    name            TEXT PRIMARY KEY,
    commit_position INTEGER NOT NULL,
    global_position INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE dead_letters (
    projection      TEXT NOT NULL,
    event_id        BLOB NOT NULL,
    global_position INTEGER NOT NULL,
    stream_id       TEXT NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    error           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    failed_at       INTEGER NOT NULL,
    PRIMARY KEY (projection, event_id)
);

CREATE TABLE processes (
    process    TEXT NOT NULL,
    instance   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT NOT NULL,
    handled    TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (process, instance)
);

CREATE TABLE process_timers (
    process  TEXT NOT NULL,
    instance TEXT NOT NULL,
    name     TEXT NOT NULL,
    due_at   INTEGER NOT NULL,
    PRIMARY KEY (process, instance, name)
);
CREATE INDEX process_timers_due ON process_timers (process, due_at);

-- One active worker per transactional projection across processes: a lease, renewed while it runs.
CREATE TABLE projection_leases (
    projection TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE control_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    projection   TEXT NOT NULL,
    command      TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    claimed_by   TEXT,
    answer       TEXT
);
CREATE INDEX control_requests_pending ON control_requests (projection, id) WHERE claimed_by IS NULL AND answer IS NULL;

CREATE TABLE projection_reports (
    projection TEXT NOT NULL,
    instance   TEXT NOT NULL,
    report     TEXT NOT NULL,
    PRIMARY KEY (projection, instance)
);

CREATE TABLE paused_projections (
    projection TEXT PRIMARY KEY
);
