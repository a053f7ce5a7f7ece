-- Event ids an integration consumer has processed, recorded in the transaction of its handler's writes.
CREATE TABLE processed_events (
    consumer     TEXT    NOT NULL,
    event_id     BLOB    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
