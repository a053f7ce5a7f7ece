-- PL/pgSQL caches a generic plan per statement after a few calls. Planned while the tables were empty, the
-- id and version lookups in append_events chose sequential scans and kept them as the tables grew: appends slowed
-- in proportion to the table (measured: batches of 100 from 140/s down to 35/s within 10 s, from an empty store).
-- Every lookup in the function has an index, so forbid sequential scans inside it.
ALTER FUNCTION append_events(text, bigint, uuid[], text[], integer[], jsonb[], jsonb[]) SET enable_seqscan = off;
