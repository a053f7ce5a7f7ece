-- Tags of events (`kind:id`), for query reads and conditional appends: a JSON array on the event (NULL when it
-- has none), and one row per tag and event to find them by.
ALTER TABLE events ADD COLUMN tags TEXT;
CREATE TABLE event_tags (
    tag TEXT NOT NULL,
    global_position INTEGER NOT NULL,
    PRIMARY KEY (tag, global_position)
) WITHOUT ROWID;
