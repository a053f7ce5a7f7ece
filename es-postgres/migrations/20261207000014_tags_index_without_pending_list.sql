-- The tags' GIN index writes each event's tags into the index itself, not into a pending list. With the pending
-- list (GIN's default `fastupdate`), every search by tag reads the whole list (up to `gin_pending_list_limit`, 4 MB)
-- until a vacuum merges it: a condition's check and a query read by tag took a millisecond and more on a busy store
-- instead of a few index pages. An event carries few tags, so writing them at once costs little.
ALTER INDEX events_tags SET (fastupdate = off);
SELECT gin_clean_pending_list('events_tags'::regclass);
