-- The event store's tables and its append function, created in the schema that is first on the search_path
-- (es-postgres sets it to the store's schema before running its migrations).

CREATE TABLE streams (
    stream_id  text PRIMARY KEY,
    version    bigint NOT NULL CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);

CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version >= 1),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL CHECK (event_type <> ''),
    schema_version  integer NOT NULL CHECK (schema_version >= 1),
    payload         jsonb NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key PRIMARY KEY (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- The global feed: read in (transaction_id, global_position) order, below the oldest running transaction.
CREATE INDEX events_transaction_position ON events (transaction_id, global_position);

CREATE TABLE snapshots (
    stream_id      text NOT NULL,
    snapshot_type  text NOT NULL,
    schema_version integer NOT NULL CHECK (schema_version >= 1),
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    state          jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, snapshot_type)
);

CREATE TABLE checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8 NOT NULL,
    global_position bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Appends one batch to one stream. Returns one row whose `outcome` says what happened:
--   'appended'  versions first..last were written at positions (first_tx, first_position)..(last_tx, last_position)
--   'replayed'  every id was already stored as a run this expectation could have written: its original result
--   'conflict'  the stream is at `actual_version` (NULL: missing); nothing written
--   'duplicate' `dup_event_id` is stored in a way that makes this no retry (`dup_reason`); nothing written
-- p_expected: NULL any, -1 stream exists, 0 no stream, n > 0 exactly version n.
-- The per-stream advisory lock is taken before the first write, so the transaction id (which orders the global
-- feed) is assigned only after the stream's previous writer committed: the feed keeps each stream's order.
CREATE FUNCTION append_events(
    p_stream_id text,
    p_expected bigint,
    p_event_ids uuid[],
    p_types text[],
    p_schema_versions integer[],
    p_payloads jsonb[],
    p_metadata jsonb[]
) RETURNS TABLE (
    outcome text,
    first_version bigint,
    last_version bigint,
    first_tx bigint,
    first_position bigint,
    last_tx bigint,
    last_position bigint,
    actual_version bigint,
    dup_event_id uuid,
    dup_reason text,
    dup_stream text,
    dup_version bigint
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    n integer := coalesce(cardinality(p_event_ids), 0);
    v_current bigint;
    v_found integer;
    v_first record;
    v_bad record;
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'empty append to stream %', p_stream_id USING ERRCODE = '22023';
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_events must be the first write of its transaction' USING ERRCODE = '55000';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));

    -- A retry? Look the ids up first (they are distinct: the client checks that). Stored ids must all be there,
    -- in this stream, in batch order, starting where this expectation would have written them.
    SELECT count(*) INTO v_found FROM events WHERE event_id = ANY (p_event_ids);
    IF v_found > 0 AND v_found < n THEN
        RETURN QUERY SELECT 'duplicate', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::bigint, u.id, 'part_of_batch_stored', NULL::text, NULL::bigint
          FROM unnest(p_event_ids) WITH ORDINALITY AS u(id, ord)
          JOIN events e ON e.event_id = u.id
         ORDER BY u.ord LIMIT 1;
        RETURN;
    END IF;
    IF v_found = n THEN
        SELECT u.id, e.stream_id AS found_stream, e.stream_version AS found_version
          INTO v_first
          FROM unnest(p_event_ids) WITH ORDINALITY AS u(id, ord)
          JOIN events e ON e.event_id = u.id
         WHERE u.ord = 1;
        SELECT u.id, e.stream_id AS found_stream, e.stream_version AS found_version
          INTO v_bad
          FROM unnest(p_event_ids) WITH ORDINALITY AS u(id, ord)
          JOIN events e ON e.event_id = u.id
         WHERE e.stream_id <> p_stream_id
            OR e.stream_version <> v_first.found_version + u.ord - 1
         ORDER BY u.ord
         LIMIT 1;
        IF v_bad.id IS NULL AND NOT (
               p_expected IS NULL
            OR (p_expected = -1 AND v_first.found_version > 1)
            OR (p_expected >= 0 AND v_first.found_version = p_expected + 1)) THEN
            v_bad := v_first;
        END IF;
        IF v_bad.id IS NOT NULL THEN
            RETURN QUERY SELECT 'duplicate', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                NULL::bigint, NULL::bigint, v_bad.id,
                CASE WHEN v_bad.found_stream <> p_stream_id THEN 'stored_in_other_stream'
                     ELSE 'stored_at_other_version' END,
                v_bad.found_stream, v_bad.found_version;
            RETURN;
        END IF;
        RETURN QUERY
            SELECT 'replayed', min(e.stream_version), max(e.stream_version),
                   (array_agg(e.transaction_id::text::bigint ORDER BY e.stream_version))[1],
                   (array_agg(e.global_position ORDER BY e.stream_version))[1],
                   (array_agg(e.transaction_id::text::bigint ORDER BY e.stream_version DESC))[1],
                   (array_agg(e.global_position ORDER BY e.stream_version DESC))[1],
                   NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::bigint
              FROM events e WHERE e.event_id = ANY (p_event_ids);
        RETURN;
    END IF;

    SELECT s.version INTO v_current FROM streams s WHERE s.stream_id = p_stream_id;
    IF (p_expected = -1 AND v_current IS NULL)
       OR (p_expected >= 0 AND coalesce(v_current, 0) <> p_expected) THEN
        RETURN QUERY SELECT 'conflict', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, v_current, NULL::uuid, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    INSERT INTO streams AS s (stream_id, version) VALUES (p_stream_id, coalesce(v_current, 0) + n)
    ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, updated_at = now();

    RETURN QUERY
    WITH inserted AS (
        INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata)
        SELECT p_stream_id, coalesce(v_current, 0) + u.ord, u.id, u.t, u.sv, u.p, coalesce(u.m, '{}')
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_metadata)
               WITH ORDINALITY AS u(id, t, sv, p, m, ord)
         ORDER BY u.ord
        RETURNING global_position, stream_version
    )
    SELECT 'appended', min(i.stream_version), max(i.stream_version),
           pg_current_xact_id()::text::bigint, min(i.global_position),
           pg_current_xact_id()::text::bigint, max(i.global_position),
           NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::bigint
      FROM inserted i;
END
$$;
