//! The SQL that reads events: streams, folds, the global order, the feed, the head and what an operator counts.

use crate::schema::{EVENT_COLUMNS, SchemaName};

/// The statements that read events.
#[derive(Clone, Debug)]
pub(crate) struct EventSql {
    pub(crate) read_forward: String,
    pub(crate) read_backward: String,
    pub(crate) fold_stream: String,
    pub(crate) fold_stream_timed: String,
    pub(crate) read_all: String,
    pub(crate) read_filtered: String,
    pub(crate) notify_channel: String,
    pub(crate) head: String,
    pub(crate) count_after: String,
    pub(crate) held_back: String,
    pub(crate) contains_event: String,
}

impl EventSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            read_forward: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events WHERE stream_id = $1 AND stream_version >= $2 \
             ORDER BY stream_version LIMIT $3"
            ),
            read_backward: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events WHERE stream_id = $1 AND stream_version <= $2 \
             ORDER BY stream_version DESC LIMIT $3"
            ),
            // Only what a fold decodes: each column more costs a load a tenth more (measured at 10,000 events).
            fold_stream: format!(
                "SELECT stream_version, event_type, schema_version, payload FROM {s}.events \
             WHERE stream_id = $1 AND stream_version >= $2 AND stream_version < $3 ORDER BY stream_version"
            ),
            fold_stream_timed: format!(
                "SELECT stream_version, event_type, schema_version, payload, created_at FROM {s}.events \
             WHERE stream_id = $1 AND stream_version >= $2 AND stream_version < $3 ORDER BY stream_version"
            ),
            // Only below the oldest running transaction: nothing can commit behind this read later.
            read_all: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events \
             WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.transaction_id, events.global_position LIMIT $3"
            ),
            // A feed page filtered on the server: the selected rows of the next `$3` (categories `$4`, event
            // types `$5`; NULL: any), then one row marked `through` with the position of the page's last row, so a
            // reader moves past the rows it does not want without fetching them.
            read_filtered: format!(
                "WITH page AS (SELECT {EVENT_COLUMNS}, \
               ($4::text[] IS NULL OR split_part(stream_id, '-', 1) = ANY($4)) \
               AND ($5::text[] IS NULL OR event_type = ANY($5)) \
               AND ($6::int IS NULL OR {partition} = $6) AS wanted \
             FROM {s}.events \
             WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.transaction_id, events.global_position LIMIT $3) \
             SELECT * FROM (SELECT transaction_id, global_position, stream_id, stream_version, event_id, \
                 event_type, schema_version, payload, metadata, created_at, tags, false AS through \
               FROM page WHERE wanted \
             UNION ALL (SELECT transaction_id, global_position, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                 NULL, NULL, true FROM page ORDER BY transaction_id DESC, global_position DESC LIMIT 1)) rows \
             ORDER BY through, transaction_id, global_position",
                partition = crate::projection::partition_sql("stream_id", "$7::int"),
            ),
            notify_channel: format!("es_events_{schema}"),
            head: format!(
                "SELECT transaction_id::text::bigint, global_position FROM {s}.events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
            ),
            // At most $3 rows read: an operator's count stops at the cap (the caller estimates past it).
            count_after: format!(
                "SELECT count(*) FROM (SELECT 1 FROM {s}.events \
             WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) LIMIT $3) capped"
            ),
            // Committed events at or above the horizon (visible to this snapshot, not yet to the feed), and the
            // backend whose transaction is the horizon (none for a prepared transaction).
            held_back: format!(
                "WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin), \
             waiting AS (SELECT count(*) AS n FROM (SELECT 1 FROM {s}.events, horizon \
               WHERE transaction_id >= horizon.xmin LIMIT $1) capped) \
             SELECT waiting.n, a.pid, extract(epoch FROM now() - a.xact_start)::float8, a.state, \
               a.application_name \
             FROM waiting, horizon LEFT JOIN pg_stat_activity a \
               ON a.backend_xid::text::bigint = (horizon.xmin::text::bigint & 4294967295) \
             WHERE waiting.n > 0 LIMIT 1"
            ),
            contains_event: format!(
                "SELECT EXISTS (SELECT 1 FROM {s}.events WHERE event_id = $1 AND stream_id = $2)"
            ),
        }
    }
}
