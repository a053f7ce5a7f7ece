-- Document projections' documents (JSON text), keyed by projection and id; written with the projection's
-- checkpoint in one transaction. Indexes on declared fields are created by the worker
-- (`documents_by_<field>`, on json_extract of that field).
CREATE TABLE documents (
    projection TEXT NOT NULL,
    id TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (projection, id)
) WITHOUT ROWID;
