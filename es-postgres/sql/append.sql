-- The append path as a migrated database has it: the functions of the store's schema (`es` here), as
-- `pg_get_functiondef` prints them. Generated: `ES_BLESS=1 cargo test -p es-postgres sql_append_sql`;
-- checked against a freshly migrated schema by that test. Change them with a new migration.

CREATE OR REPLACE FUNCTION es.append_many(p_streams text[], p_expected bigint[], p_counts integer[], p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_payloads jsonb[], p_metadata jsonb[])
 RETURNS TABLE(append_index integer, outcome text, first_version bigint, last_version bigint, first_tx bigint, first_position bigint, last_tx bigint, last_position bigint, actual_version bigint, dup_event_id uuid, dup_reason text, dup_stream text, dup_version bigint)
 LANGUAGE plpgsql
 SET search_path TO 'es'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    n_appends integer := coalesce(cardinality(p_streams), 0);
    v_current bigint[];
    v_base bigint[];
    v_start integer[];
    v_written integer[];
    v_first_version bigint[];
    v_last_version bigint[];
    v_first_position bigint[];
    v_last_position bigint[];
    v_ok boolean;
    v_offset integer := 0;
    v_tx bigint;
    v_busy_keys bigint[];
    v_busy boolean[];
    r record;
    i integer;
BEGIN
    IF n_appends = 0 OR cardinality(p_expected) <> n_appends OR cardinality(p_counts) <> n_appends
       OR coalesce(cardinality(p_event_ids), 0) <> (SELECT sum(c) FROM unnest(p_counts) c)
       OR EXISTS (SELECT 1 FROM unnest(p_counts) c WHERE c IS NULL OR c < 1) THEN
        RAISE EXCEPTION 'append_many: malformed arguments' USING ERRCODE = '22023';
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_many must be the first write of its transaction' USING ERRCODE = '55000';
    END IF;
    SELECT coalesce(array_agg(locks.k), '{}') INTO v_busy_keys
      FROM (SELECT DISTINCT hashtextextended(s, hashtext(current_schema())) AS k FROM unnest(p_streams) s ORDER BY 1) AS locks
     WHERE NOT pg_try_advisory_xact_lock(locks.k);
    SELECT array_agg((SELECT max(e.stream_version) FROM events e WHERE e.stream_id = s.sid) ORDER BY s.ord)
      INTO v_current
      FROM unnest(p_streams) WITH ORDINALITY AS s(sid, ord);

    -- Which appends hold their expectation, and where each one's events start.
    v_base := array_fill(NULL::bigint, ARRAY[n_appends]);
    v_start := array_fill(0, ARRAY[n_appends]);
    v_busy := array_fill(false, ARRAY[n_appends]);
    FOR i IN 1..n_appends LOOP
        v_start[i] := v_offset;
        v_offset := v_offset + p_counts[i];
        IF hashtextextended(p_streams[i], hashtext(current_schema())) = ANY (v_busy_keys) THEN
            v_busy[i] := true;
            CONTINUE;
        END IF;
        v_ok := CASE
            WHEN p_expected[i] IS NULL THEN true
            WHEN p_expected[i] = -1 THEN v_current[i] IS NOT NULL
            ELSE coalesce(v_current[i], 0) = p_expected[i]
        END;
        IF v_ok THEN
            v_base[i] := coalesce(v_current[i], 0);
        END IF;
    END LOOP;

    v_written := array_fill(0, ARRAY[n_appends]);
    v_first_version := array_fill(NULL::bigint, ARRAY[n_appends]);
    v_last_version := array_fill(NULL::bigint, ARRAY[n_appends]);
    v_first_position := array_fill(NULL::bigint, ARRAY[n_appends]);
    v_last_position := array_fill(NULL::bigint, ARRAY[n_appends]);
    IF EXISTS (SELECT 1 FROM unnest(v_base) b WHERE b IS NOT NULL) THEN
        FOR r IN
            WITH batch AS (
                SELECT a.ord::integer AS idx, v_base[a.ord] + (u.ord - v_start[a.ord]) AS version,
                       u.id, u.t, u.sv, u.p, u.m, u.ord
                  FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_metadata)
                       WITH ORDINALITY AS u(id, t, sv, p, m, ord)
                  JOIN unnest(p_counts) WITH ORDINALITY AS a(c, ord)
                    ON u.ord > v_start[a.ord] AND u.ord <= v_start[a.ord] + a.c
                 WHERE v_base[a.ord] IS NOT NULL
            ), inserted AS (
                INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload,
                                    metadata)
                SELECT p_streams[b.idx], b.version, b.id, b.t, b.sv, b.p, coalesce(b.m, '{}')
                  FROM batch b
                 ORDER BY b.ord
                ON CONFLICT (event_id) DO NOTHING
                RETURNING events.stream_id, events.stream_version, events.global_position
            )
            SELECT s.ord::integer AS idx, count(*)::integer AS written, min(ins.stream_version) AS fv,
                   max(ins.stream_version) AS lv, min(ins.global_position) AS fp, max(ins.global_position) AS lp
              FROM inserted ins
              JOIN unnest(p_streams) WITH ORDINALITY AS s(sid, ord) ON s.sid = ins.stream_id
             WHERE v_base[s.ord] IS NOT NULL
             GROUP BY s.ord
        LOOP
            v_written[r.idx] := r.written;
            v_first_version[r.idx] := r.fv;
            v_last_version[r.idx] := r.lv;
            v_first_position[r.idx] := r.fp;
            v_last_position[r.idx] := r.lp;
        END LOOP;
        v_tx := pg_current_xact_id()::text::bigint;
    END IF;

    RETURN QUERY SELECT g.i, 'appended', v_first_version[g.i], v_last_version[g.i], v_tx, v_first_position[g.i],
        v_tx, v_last_position[g.i], NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::bigint
      FROM generate_series(1, n_appends) AS g(i)
     WHERE v_base[g.i] IS NOT NULL AND v_written[g.i] = p_counts[g.i];
    FOR i IN 1..n_appends LOOP
        CONTINUE WHEN v_base[i] IS NOT NULL AND v_written[i] = p_counts[i];
        IF v_busy[i] THEN
            RETURN QUERY SELECT i, 'busy', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                NULL::bigint, NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::bigint;
            CONTINUE;
        END IF;
        IF v_written[i] > 0 THEN
            -- Some ids of this append were stored already: take back the part written, then classify it.
            DELETE FROM events
             WHERE stream_id = p_streams[i] AND stream_version > v_base[i]
               AND stream_version <= v_base[i] + p_counts[i];
        END IF;
        RETURN QUERY SELECT i, c.* FROM classify_append(p_streams[i], p_expected[i],
            p_event_ids[v_start[i] + 1 : v_start[i] + p_counts[i]], v_current[i]) AS c;
    END LOOP;
END
$function$;

CREATE OR REPLACE FUNCTION es.append_multi(p_wait_ms integer, p_streams text[], p_expected bigint[], p_counts integer[], p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_payloads jsonb[], p_metadata jsonb[], p_check_streams text[], p_check_expected bigint[], p_tags jsonb[], p_condition jsonb)
 RETURNS TABLE(append_index integer, outcome text, first_version bigint, last_version bigint, first_tx bigint, first_position bigint, last_tx bigint, last_position bigint, actual_version bigint, dup_event_id uuid, dup_reason text, dup_stream text, dup_version bigint)
 LANGUAGE plpgsql
 SET search_path TO 'es'
 SET enable_seqscan TO 'off'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION es.append_one(p_stream_id text, p_expected bigint, p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_payloads jsonb[], p_metadata jsonb[])
 RETURNS TABLE(append_index integer, outcome text, first_version bigint, last_version bigint, first_tx bigint, first_position bigint, last_tx bigint, last_position bigint, actual_version bigint, dup_event_id uuid, dup_reason text, dup_stream text, dup_version bigint)
 LANGUAGE plpgsql
 SET search_path TO 'es'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    n integer := coalesce(cardinality(p_event_ids), 0);
    v_current bigint;
    v_base bigint;
    r record;
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'empty append to stream %', p_stream_id USING ERRCODE = '22023';
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_one must be the first write of its transaction' USING ERRCODE = '55000';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_stream_id, hashtext(current_schema()))) THEN
        RETURN QUERY SELECT 1, 'busy', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    SELECT max(e.stream_version) INTO v_current FROM events e WHERE e.stream_id = p_stream_id;
    IF (p_expected = -1 AND v_current IS NULL) OR (p_expected >= 0 AND coalesce(v_current, 0) <> p_expected) THEN
        RETURN QUERY SELECT 1, c.* FROM classify_append(p_stream_id, p_expected, p_event_ids, v_current) AS c;
        RETURN;
    END IF;
    v_base := coalesce(v_current, 0);
    WITH inserted AS (
        INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata)
        SELECT p_stream_id, v_base + u.ord, u.id, u.t, u.sv, u.p, coalesce(u.m, '{}')
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_metadata)
               WITH ORDINALITY AS u(id, t, sv, p, m, ord)
         ORDER BY u.ord
        ON CONFLICT (event_id) DO NOTHING
        RETURNING events.stream_version, events.global_position
    )
    SELECT count(*)::integer AS written, min(i.stream_version) AS fv, max(i.stream_version) AS lv,
           min(i.global_position) AS fp, max(i.global_position) AS lp
      INTO r FROM inserted i;
    IF r.written = n THEN
        RETURN QUERY SELECT 1, 'appended', r.fv, r.lv, pg_current_xact_id()::text::bigint, r.fp,
            pg_current_xact_id()::text::bigint, r.lp, NULL::bigint, NULL::uuid, NULL::text, NULL::text,
            NULL::bigint;
        RETURN;
    END IF;
    IF r.written > 0 THEN
        DELETE FROM events
         WHERE stream_id = p_stream_id AND stream_version > v_base AND stream_version <= v_base + n;
    END IF;
    RETURN QUERY SELECT 1, c.* FROM classify_append(p_stream_id, p_expected, p_event_ids, v_current) AS c;
END
$function$;

CREATE OR REPLACE FUNCTION es.append_waiting(p_wait_ms integer, p_stream_id text, p_expected bigint, p_event_ids uuid[], p_types text[], p_schema_versions integer[], p_payloads jsonb[], p_metadata jsonb[])
 RETURNS TABLE(append_index integer, outcome text, first_version bigint, last_version bigint, first_tx bigint, first_position bigint, last_tx bigint, last_position bigint, actual_version bigint, dup_event_id uuid, dup_reason text, dup_stream text, dup_version bigint)
 LANGUAGE plpgsql
 SET search_path TO 'es'
AS $function$
DECLARE
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM set_config('lock_timeout', greatest(p_wait_ms, 1)::text, true);
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, hashtext(current_schema())));
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    -- The lock is this session's now: append_one's try takes it again at once.
    RETURN QUERY SELECT * FROM append_one(p_stream_id, p_expected, p_event_ids, p_types, p_schema_versions,
        p_payloads, p_metadata);
END
$function$;

CREATE OR REPLACE FUNCTION es.classify_append(p_stream_id text, p_expected bigint, p_event_ids uuid[], p_current bigint)
 RETURNS TABLE(outcome text, first_version bigint, last_version bigint, first_tx bigint, first_position bigint, last_tx bigint, last_position bigint, actual_version bigint, dup_event_id uuid, dup_reason text, dup_stream text, dup_version bigint)
 LANGUAGE plpgsql
 SET search_path TO 'es'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    n integer := cardinality(p_event_ids);
    v_found integer;
    v_first record;
    v_bad record;
    -- Whether the expectation holds for the stream as it is: when it does not, and the batch is no retry, the
    -- answer is a conflict (reload and decide again), whatever ids it reuses.
    v_holds boolean := p_expected IS NULL
        OR (p_expected = -1 AND p_current IS NOT NULL)
        OR (p_expected >= 0 AND coalesce(p_current, 0) = p_expected);
BEGIN
    SELECT count(*) INTO v_found FROM events WHERE event_id = ANY (p_event_ids);
    IF v_found = 0 THEN
        RETURN QUERY SELECT 'conflict', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, p_current, NULL::uuid, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF v_found < n THEN
        IF NOT v_holds THEN
            RETURN QUERY SELECT 'conflict', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                NULL::bigint, p_current, NULL::uuid, NULL::text, NULL::text, NULL::bigint;
            RETURN;
        END IF;
        RETURN QUERY SELECT 'duplicate', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::bigint, u.id, 'part_of_batch_stored', NULL::text, NULL::bigint
          FROM unnest(p_event_ids) WITH ORDINALITY AS u(id, ord)
          JOIN events e ON e.event_id = u.id
         ORDER BY u.ord LIMIT 1;
        RETURN;
    END IF;
    -- Every id is stored: a retry if they are in this stream, in batch order, starting where this expectation
    -- would have written them.
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
    IF v_bad.id IS NOT NULL AND NOT v_holds THEN
        RETURN QUERY SELECT 'conflict', NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, p_current, NULL::uuid, NULL::text, NULL::text, NULL::bigint;
        RETURN;
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
END
$function$;
