-- The version of each document projection that readers see, and the key its documents are kept under (the name
-- for version 1, `name@vN` after).
CREATE TABLE document_versions (
    projection TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    live_key TEXT NOT NULL
);
