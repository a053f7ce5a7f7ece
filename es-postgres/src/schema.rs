//! The schema the store's tables live in, and the SQL text bound to it.

use std::fmt;

use crate::append::AppendSql;
use crate::catalog::CatalogSql;
use crate::checkpoints::CheckpointSql;
use crate::dead_letters::DeadLetterSql;
use crate::documents::DocumentSql;
use crate::error::PgSetupError;
use crate::processes::ProcessSql;
use crate::snapshots::SnapshotSql;
use crate::store::EventSql;

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
    pub(crate) events: EventSql,
    pub(crate) snapshots: SnapshotSql,
    pub(crate) checkpoints: CheckpointSql,
    pub(crate) dead_letters: DeadLetterSql,
    pub(crate) processes: ProcessSql,
    pub(crate) catalog: CatalogSql,
    pub(crate) documents: DocumentSql,
    pub(crate) mark_processed: String,
    pub(crate) projection_lock_prefix: String,
    pub(crate) control: crate::control::ControlSql,
}

/// The columns of a recorded event, in the order `rows::recorded_event` reads them.
pub(crate) const EVENT_COLUMNS: &str = "transaction_id::text::bigint AS transaction_id, global_position, stream_id, \
     stream_version, event_id, event_type, schema_version, payload, metadata, created_at, tags";

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
                multi: format!(
                    "SELECT * FROM {s}.append_multi($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ),
            },
            mark_processed: format!(
                "INSERT INTO {s}.processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            ),
            projection_lock_prefix: format!("es-projection:{schema}:"),
            control: crate::control::ControlSql::new(&s),
            events: EventSql::new(schema),
            snapshots: SnapshotSql::new(schema),
            checkpoints: CheckpointSql::new(schema),
            dead_letters: DeadLetterSql::new(schema),
            processes: ProcessSql::new(schema),
            catalog: CatalogSql::new(schema),
            documents: DocumentSql::new(schema),
        }
    }
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
