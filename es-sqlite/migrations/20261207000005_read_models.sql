-- Declared read models (`SqliteProjection::read_model`): the version each projection's tables were built for, and
-- their names (a JSON array), so a new version drops the old tables and rebuilds.
CREATE TABLE read_models (
    projection TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    tables TEXT NOT NULL
);
