-- Tags (`kind:id`) on events, found through a GIN index.
ALTER TABLE events ADD COLUMN tags text[];
CREATE INDEX events_tags ON events USING gin (tags) WHERE tags IS NOT NULL;

-- Multi-stream, tagged and conditional appends: every lock first, then every check, then every batch, in one
-- transaction; all or nothing. Locks, in one order for every writer (no deadlock): the tags (shared for the tags
-- of the events written, exclusive for the tags a condition names, so a conditional append waits for every
-- in-flight writer of a tag it reads and holds off new ones), then the streams (written or only checked), then,
-- for a condition item without tags, the events table itself (SHARE ROW EXCLUSIVE: every other writer waits).
-- Rows as append_many's: one per append ('appended', 'replayed', 'duplicate'), one 'conflict' row per stream
-- whose expectation failed (a checked stream's append_index follows the appends'), or one 'condition' row naming
-- an event that fails the condition (its position, stream and type).
CREATE FUNCTION append_multi(p_wait_ms integer, p_streams text[], p_expected bigint[], p_counts integer[],
                             p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_payloads jsonb[],
                             p_metadata jsonb[], p_check_streams text[], p_check_expected bigint[],
                             p_tags jsonb[], p_condition jsonb)
RETURNS TABLE(append_index integer, outcome text, first_version bigint, last_version bigint, first_tx bigint,
              first_position bigint, last_tx bigint, last_position bigint, actual_version bigint,
              dup_event_id uuid, dup_reason text, dup_stream text, dup_version bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_seqscan = off
AS $$
DECLARE
    n_appends integer := coalesce(cardinality(p_streams), 0);
    n_checks integer := coalesce(cardinality(p_check_streams), 0);
    v_lock_timeout text := current_setting('lock_timeout');
    v_all text[] := coalesce(p_streams, '{}') || coalesce(p_check_streams, '{}');
    v_expected bigint[] := coalesce(p_expected, '{}') || coalesce(p_check_expected, '{}');
    v_current bigint[];
    v_start integer[];
    v_offset integer := 0;
    v_conflict boolean := false;
    v_tx bigint;
    v_global boolean;
    v_item jsonb;
    v_types text[];
    v_tags text[];
    r record;
    i integer;
BEGIN
    IF n_appends = 0 OR cardinality(p_expected) <> n_appends OR cardinality(p_counts) <> n_appends
       OR coalesce(cardinality(p_check_expected), 0) <> n_checks
       OR coalesce(cardinality(p_tags), 0) <> coalesce(cardinality(p_event_ids), 0)
       OR coalesce(cardinality(p_event_ids), 0) <> (SELECT sum(c) FROM unnest(p_counts) c) THEN
        RAISE EXCEPTION 'append_multi: malformed arguments' USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('lock_timeout', greatest(p_wait_ms, 1)::text, true);
    -- The tags: exclusive for a condition's (one tag per item: a matching event carries them all), shared for the
    -- events' own; each key once, in key order.
    FOR r IN
        SELECT x.k, bool_or(x.exclusive) AS exclusive
          FROM (SELECT hashtextextended('tag:' || t.tag, hashtext(current_schema())) AS k, t.exclusive
                  FROM (SELECT it -> 'tags' ->> 0 AS tag, true AS exclusive
                          FROM jsonb_array_elements(coalesce(p_condition -> 'items', '[]')) it
                         WHERE jsonb_array_length(coalesce(it -> 'tags', '[]')) > 0
                        UNION ALL
                        SELECT jsonb_array_elements_text(tg), false FROM unnest(p_tags) tg WHERE tg IS NOT NULL) t) x
         GROUP BY x.k
         ORDER BY x.k
    LOOP
        IF r.exclusive THEN
            PERFORM pg_advisory_xact_lock(r.k);
        ELSE
            PERFORM pg_advisory_xact_lock_shared(r.k);
        END IF;
    END LOOP;
    -- The streams, in one order, waiting at most p_wait_ms.
    FOR r IN SELECT DISTINCT hashtextextended(s, hashtext(current_schema())) AS k FROM unnest(v_all) s ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(r.k);
    END LOOP;
    -- A condition item without tags (event types alone): every writer of the table waits.
    v_global := EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_condition -> 'items', '[]')) it
                         WHERE jsonb_array_length(coalesce(it -> 'tags', '[]')) = 0);
    IF v_global THEN
        LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;
    END IF;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    SELECT array_agg((SELECT max(e.stream_version) FROM events e WHERE e.stream_id = s.sid) ORDER BY s.ord)
      INTO v_current
      FROM unnest(v_all) WITH ORDINALITY AS s(sid, ord);
    v_start := array_fill(0, ARRAY[n_appends]);
    FOR i IN 1..n_appends LOOP
        v_start[i] := v_offset;
        v_offset := v_offset + p_counts[i];
    END LOOP;

    -- Some ids stored already: a retry, or a duplicate; each append classified as a single one would be.
    IF EXISTS (SELECT 1 FROM events WHERE event_id = ANY (p_event_ids)) THEN
        FOR i IN 1..n_appends LOOP
            RETURN QUERY SELECT i, c.* FROM classify_append(p_streams[i], p_expected[i],
                p_event_ids[v_start[i] + 1 : v_start[i] + p_counts[i]], v_current[i]) AS c;
        END LOOP;
        RETURN;
    END IF;

    FOR i IN 1..(n_appends + n_checks) LOOP
        IF NOT (v_expected[i] IS NULL
                OR (v_expected[i] = -1 AND v_current[i] IS NOT NULL)
                OR (v_expected[i] >= 0 AND coalesce(v_current[i], 0) = v_expected[i])) THEN
            v_conflict := true;
            RETURN QUERY SELECT i, 'conflict', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                NULL::bigint, NULL::bigint, v_current[i], NULL::uuid, NULL::text, NULL::text, NULL::bigint;
        END IF;
    END LOOP;
    IF v_conflict THEN
        RETURN;
    END IF;

    -- The condition, checked after its locks: every writer of a matching event has committed (or waits). One
    -- statement per item, planned with its own predicates (the tags' GIN index, the position index).
    IF p_condition IS NOT NULL THEN
        FOR v_item IN SELECT it FROM jsonb_array_elements(p_condition -> 'items') it LOOP
            v_types := ARRAY(SELECT jsonb_array_elements_text(coalesce(v_item -> 'types', '[]')));
            v_tags := ARRAY(SELECT jsonb_array_elements_text(coalesce(v_item -> 'tags', '[]')));
            EXECUTE 'SELECT e.transaction_id::text::bigint AS tx, e.global_position, e.stream_id, e.event_type '
                    'FROM events e WHERE true'
                    || CASE WHEN jsonb_typeof(p_condition -> 'after') = 'array'
                            THEN ' AND (e.transaction_id, e.global_position) > ($1::text::xid8, $2)' ELSE '' END
                    || CASE WHEN cardinality(v_types) > 0 THEN ' AND e.event_type = ANY ($3)' ELSE '' END
                    || CASE WHEN cardinality(v_tags) > 0 THEN ' AND e.tags @> $4' ELSE '' END
                    || ' LIMIT 1'
               INTO r
              USING (p_condition -> 'after' ->> 0)::bigint, (p_condition -> 'after' ->> 1)::bigint, v_types, v_tags;
            IF r.tx IS NOT NULL THEN
                RETURN QUERY SELECT 0, 'condition', NULL::bigint, NULL::bigint, r.tx, r.global_position,
                    NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid, r.event_type, r.stream_id, NULL::bigint;
                RETURN;
            END IF;
        END LOOP;
    END IF;

    FOR r IN
        WITH batch AS (
            SELECT a.ord::integer AS idx, coalesce(v_current[a.ord], 0) + (u.ord - v_start[a.ord]) AS version,
                   u.id, u.t, u.sv, u.p, u.m, u.tg, u.ord
              FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_metadata, p_tags)
                   WITH ORDINALITY AS u(id, t, sv, p, m, tg, ord)
              JOIN unnest(p_counts) WITH ORDINALITY AS a(c, ord)
                ON u.ord > v_start[a.ord] AND u.ord <= v_start[a.ord] + a.c
        ), inserted AS (
            INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata,
                                tags)
            SELECT p_streams[b.idx], b.version, b.id, b.t, b.sv, b.p, coalesce(b.m, '{}'),
                   CASE WHEN b.tg IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(b.tg)) END
              FROM batch b
             ORDER BY b.ord
            RETURNING events.stream_id, events.stream_version, events.global_position
        )
        SELECT s.ord::integer AS idx, min(ins.stream_version) AS fv, max(ins.stream_version) AS lv,
               min(ins.global_position) AS fp, max(ins.global_position) AS lp
          FROM inserted ins
          JOIN unnest(p_streams) WITH ORDINALITY AS s(sid, ord) ON s.sid = ins.stream_id
         GROUP BY s.ord
    LOOP
        v_tx := pg_current_xact_id()::text::bigint;
        RETURN QUERY SELECT r.idx, 'appended', r.fv, r.lv, v_tx, r.fp, v_tx, r.lp, NULL::bigint, NULL::uuid,
            NULL::text, NULL::text, NULL::bigint;
    END LOOP;
END
$$;
