-- A stale append is a conflict, not a duplicate: when a batch is no recognised retry and its expected version does
-- not hold, `classify_append` answers 'conflict' with the actual version (what a caller acts on: reload and decide
-- again), as KurrentDB does; reused ids are reported as duplicates only when the expectation would have held.

CREATE OR REPLACE FUNCTION classify_append(
    p_stream_id text,
    p_expected bigint,
    p_event_ids uuid[],
    p_current bigint
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
SET enable_seqscan = off
AS $$
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
$$;
