//! The schema the store's tables live in, and the SQL text bound to it.

use std::fmt;

use crate::append::AppendSql;
use crate::error::PgSetupError;

/// A validated PostgreSQL schema name: lower-case ASCII letters, digits and `_`, starting with a letter or `_`,
/// at most 48 bytes, not starting with `pg_`. Anything else is refused, so a name can never carry SQL.
///
/// ```
/// use es_postgres::SchemaName;
///
/// assert!(SchemaName::new("es").is_ok());
/// assert!(SchemaName::new("tenant_42").is_ok());
/// assert!(SchemaName::new("es; DROP TABLE events").is_err());
/// assert!(SchemaName::new("Es").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    /// The longest name accepted (room for the notification channel name).
    pub const MAX_LEN: usize = 48;

    /// Validates `name`.
    ///
    /// # Errors
    /// [`PgSetupError::InvalidSchemaName`] naming the rule broken.
    pub fn new(name: &str) -> Result<Self, PgSetupError> {
        let invalid = |reason: &str| PgSetupError::InvalidSchemaName {
            name: name.escape_debug().to_string(),
            reason: reason.to_owned(),
        };
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(invalid("it is empty")),
            Some(c) if !(c.is_ascii_lowercase() || c == '_') => {
                return Err(invalid("it must start with a lower-case letter or `_`"));
            }
            Some(_) => {}
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(invalid(
                "only lower-case ASCII letters, digits and `_` are allowed",
            ));
        }
        if name.len() > Self::MAX_LEN {
            return Err(invalid("it is longer than 48 bytes"));
        }
        if name.starts_with("pg_") {
            return Err(invalid(
                "names starting with `pg_` are reserved by PostgreSQL",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted as an SQL identifier.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every statement the store runs, with the schema spelled in once at construction so that each text is constant
/// (and stays in sqlx's per-connection statement cache).
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) append: AppendSql,
    pub(crate) read_forward: String,
    pub(crate) read_backward: String,
    pub(crate) fold_stream: String,
    pub(crate) fold_stream_timed: String,
    pub(crate) read_all: String,
    pub(crate) notify_channel: String,
    pub(crate) save_snapshot: String,
    pub(crate) load_snapshot: String,
    pub(crate) load_checkpoint: String,
    pub(crate) create_checkpoint: String,
    pub(crate) move_checkpoint: String,
    pub(crate) delete_checkpoint: String,
    pub(crate) event_types: String,
    pub(crate) sample_events: String,
    pub(crate) read_filtered: String,
    pub(crate) head: String,
    pub(crate) count_after: String,
    pub(crate) held_back: String,
    pub(crate) contains_event: String,
    pub(crate) park: String,
    pub(crate) dead_letters: String,
    pub(crate) remove_dead_letter: String,
    pub(crate) mark_processed: String,
    pub(crate) projection_lock_prefix: String,
    pub(crate) load_process: String,
    pub(crate) insert_process: String,
    pub(crate) update_process: String,
    pub(crate) due_timers: String,
    pub(crate) list_processes: String,
    pub(crate) control: crate::control::ControlSql,
}

/// The columns of a recorded event, in the order `rows::recorded_event` reads them.
pub(crate) const EVENT_COLUMNS: &str = "transaction_id::text::bigint AS transaction_id, global_position, stream_id, \
     stream_version, event_id, event_type, schema_version, payload, metadata, created_at";

impl Sql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            append: AppendSql {
                one: format!("SELECT * FROM {s}.append_one($1, $2, $3, $4, $5, $6, $7)"),
                many: format!("SELECT * FROM {s}.append_many($1, $2, $3, $4, $5, $6, $7, $8)"),
                waiting: format!(
                    "SELECT * FROM {s}.append_waiting($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
            },
            read_forward: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events WHERE stream_id = $1 AND stream_version >= $2 \
                 ORDER BY stream_version LIMIT $3"
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
            read_backward: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events WHERE stream_id = $1 AND stream_version <= $2 \
                 ORDER BY stream_version DESC LIMIT $3"
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
                     event_type, schema_version, payload, metadata, created_at, false AS through \
                   FROM page WHERE wanted \
                 UNION ALL (SELECT transaction_id, global_position, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                     NULL, true FROM page ORDER BY transaction_id DESC, global_position DESC LIMIT 1)) rows \
                 ORDER BY through, transaction_id, global_position",
                partition = crate::projection::partition_sql("stream_id", "$7::int"),
            ),
            notify_channel: format!("es_events_{schema}"),
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots (stream_id, snapshot_type, schema_version, stream_version, state) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (stream_id, snapshot_type) DO UPDATE \
                 SET schema_version = EXCLUDED.schema_version, stream_version = EXCLUDED.stream_version, \
                     state = EXCLUDED.state, created_at = now() \
                 WHERE snapshots.stream_version < EXCLUDED.stream_version \
                    OR snapshots.schema_version <> EXCLUDED.schema_version"
            ),
            load_snapshot: format!(
                "SELECT schema_version, stream_version, state FROM {s}.snapshots \
                 WHERE stream_id = $1 AND snapshot_type = $2"
            ),
            load_checkpoint: format!(
                "SELECT transaction_id::text::bigint, global_position FROM {s}.checkpoints WHERE name = $1"
            ),
            create_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (name, transaction_id, global_position) \
                 VALUES ($1, $2::bigint::text::xid8, $3) ON CONFLICT (name) DO NOTHING"
            ),
            move_checkpoint: format!(
                "UPDATE {s}.checkpoints \
                 SET transaction_id = $4::bigint::text::xid8, global_position = $5, updated_at = now() \
                 WHERE name = $1 AND (transaction_id, global_position) = ($2::bigint::text::xid8, $3)"
            ),
            delete_checkpoint: format!("DELETE FROM {s}.checkpoints WHERE name = $1"),
            event_types: format!(
                "SELECT event_type, schema_version, count(*) FROM {s}.events \
                 GROUP BY event_type, schema_version ORDER BY event_type, schema_version"
            ),
            head: format!(
                "SELECT transaction_id::text::bigint, global_position FROM {s}.events \
                 WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
            ),
            contains_event: format!(
                "SELECT EXISTS (SELECT 1 FROM {s}.events WHERE event_id = $1 AND stream_id = $2)"
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
            park: format!(
                "INSERT INTO {s}.dead_letters (projection, event_id, transaction_id, global_position, stream_id, \
                   stream_version, event_type, error, attempts, failed_at) \
                 VALUES ($1, $2, $3::bigint::text::xid8, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (projection, event_id) DO UPDATE SET error = EXCLUDED.error, \
                   attempts = EXCLUDED.attempts, failed_at = EXCLUDED.failed_at"
            ),
            dead_letters: format!(
                "SELECT event_id, transaction_id::text::bigint, global_position, stream_id, stream_version, \
                   event_type, error, attempts, failed_at FROM {s}.dead_letters WHERE projection = $1 \
                 ORDER BY dead_letters.transaction_id, dead_letters.global_position"
            ),
            remove_dead_letter: format!(
                "DELETE FROM {s}.dead_letters WHERE projection = $1 AND event_id = $2"
            ),
            mark_processed: format!(
                "INSERT INTO {s}.processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            ),
            projection_lock_prefix: format!("es-projection:{schema}:"),
            load_process: format!(
                "SELECT version, state, handled FROM {s}.processes WHERE process = $1 AND instance = $2"
            ),
            insert_process: save_process(
                &s,
                "INSERT INTO {s}.processes (process, instance, version, state, handled) \
                 SELECT $1, $2, $3, $4, $5 WHERE $6::bigint IS NULL \
                 ON CONFLICT (process, instance) DO NOTHING RETURNING 1",
            ),
            update_process: save_process(
                &s,
                "UPDATE {s}.processes SET version = $3, state = $4, handled = $5, updated_at = now() \
                 WHERE process = $1 AND instance = $2 AND version = $6 RETURNING 1",
            ),
            list_processes: format!(
                "SELECT p.process, p.instance, p.version, p.state, p.handled, \
                   COALESCE((SELECT jsonb_agg(jsonb_build_object('name', t.name, 'at', t.due_at) ORDER BY t.due_at) \
                     FROM {s}.process_timers t WHERE t.process = p.process AND t.instance = p.instance), '[]') \
                 FROM {s}.processes p WHERE $1::text IS NULL OR p.process = $1 \
                 ORDER BY p.process, p.instance LIMIT $2"
            ),
            control: crate::control::ControlSql::new(&s),
            due_timers: format!(
                "SELECT instance, name, due_at FROM {s}.process_timers WHERE process = $1 AND due_at <= $2 \
                 ORDER BY due_at LIMIT $3"
            ),
            sample_events: format!(
                "(SELECT {EVENT_COLUMNS} FROM {s}.events WHERE event_type = $1 AND schema_version = $2 \
                  ORDER BY global_position LIMIT $3) \
                 UNION ALL \
                 (SELECT {EVENT_COLUMNS} FROM {s}.events WHERE event_type = $1 AND schema_version = $2 \
                  ORDER BY global_position DESC LIMIT $4)"
            ),
        }
    }
}

/// A process save in one statement (one round trip, atomic): `saved` writes the state (the insert or the
/// compare-and-set update), and only if it did, timers named in `$7` are removed and those in `$8`/`$9` set.
/// Returns how many state rows were written (0: another save came first).
fn save_process(s: &str, saved: &str) -> String {
    let saved = saved.replace("{s}", s);
    format!(
        "WITH saved AS ({saved}), \
         removed AS (DELETE FROM {s}.process_timers WHERE process = $1 AND instance = $2 \
             AND name = ANY ($7::text[]) AND EXISTS (SELECT 1 FROM saved)), \
         set AS (INSERT INTO {s}.process_timers (process, instance, name, due_at) \
             SELECT $1, $2, t.name, t.due_at FROM unnest($8::text[], $9::timestamptz[]) AS t(name, due_at) \
             WHERE EXISTS (SELECT 1 FROM saved) \
             ON CONFLICT (process, instance, name) DO UPDATE SET due_at = EXCLUDED.due_at) \
         SELECT count(*) FROM saved"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_names_that_could_carry_sql_or_clash() {
        for bad in [
            "",
            "a\"; DROP SCHEMA public CASCADE; --",
            "es events",
            "Es",
            "1es",
            "pg_catalog",
            "é",
            &"a".repeat(49),
        ] {
            assert!(SchemaName::new(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["es", "_x", "tenant_42", &"a".repeat(48)] {
            assert!(SchemaName::new(good).is_ok(), "{good:?} was refused");
        }
    }
}
