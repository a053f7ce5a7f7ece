//! Declared read models on SQLite: the worker creates a projection's tables before its first batch, empties them
//! for a rebuild, and rebuilds them when their version rises.

use sqlx::SqliteConnection;

/// The tables of a [`SqliteProjection`](super::SqliteProjection)'s read model and their version. Declare it in
/// [`SqliteProjection::read_model`](super::SqliteProjection::read_model); the worker then owns the DDL:
///
/// - **Setup.** When the worker becomes the active one, each table is created (`CREATE TABLE IF NOT EXISTS`) in the
///   store's file; handlers and readers name the tables as declared.
/// - **Rebuild.** A rebuild empties the tables (`DELETE`) in the transaction that deletes the checkpoint; the
///   projection needs no `reset` of its own.
/// - **A new version** (raise [`new`](Self::new)'s number when the tables or their meaning change) drops the old
///   version's tables, creates the new ones and starts the projection from the beginning, in one transaction.
///   Readers see the new tables fill up while it catches up: on SQLite the versions are not built side by side (the
///   PostgreSQL worker's blue/green switch needs a schema per version). A worker of an older version than the
///   stored one refuses to start.
///
/// ```
/// use es_sqlite::ReadModel;
///
/// let model = ReadModel::new(2)
///     .table("balances", "account TEXT PRIMARY KEY, balance INTEGER NOT NULL")
///     .table("big_deposits", "event_id TEXT PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL");
/// assert_eq!(model.version(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadModel {
    version: u32,
    tables: Vec<(String, String)>,
}

/// The store's own tables, which a read model must not name.
const STORE_TABLES: [&str; 15] = [
    "events",
    "streams",
    "snapshots",
    "checkpoints",
    "dead_letters",
    "documents",
    "document_versions",
    "processed_events",
    "processes",
    "process_timers",
    "projection_leases",
    "projection_reports",
    "paused_projections",
    "control_requests",
    "read_models",
];

impl ReadModel {
    /// Version `version` (at least 1) of a read model, without tables yet.
    pub fn new(version: u32) -> Self {
        Self {
            version: version.max(1),
            tables: Vec::new(),
        }
    }

    /// Adds table `name` (lower-case letters, digits and `_`, starting with a letter), defined by `columns`: what
    /// goes between the parentheses of `CREATE TABLE` (columns and constraints).
    pub fn table(mut self, name: &str, columns: &str) -> Self {
        self.tables.push((name.to_owned(), columns.to_owned()));
        self
    }

    /// Its version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Checks the table names of `projection`'s read model.
    pub(crate) fn validated(self, projection: &str) -> Result<Self, String> {
        for (table, _) in &self.tables {
            let plain = table.starts_with(|c: char| c.is_ascii_lowercase())
                && table
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !plain {
                return Err(format!(
                    "read model of `{projection}`: table `{table}` must be lower-case letters, digits and `_`, \
                     starting with a letter"
                ));
            }
            if STORE_TABLES.contains(&table.as_str()) || table.starts_with("sqlite_") {
                return Err(format!(
                    "read model of `{projection}`: table `{table}` is one of the store's own; rename it"
                ));
            }
        }
        Ok(self)
    }

    fn names(&self) -> Vec<&str> {
        self.tables.iter().map(|(t, _)| t.as_str()).collect()
    }

    /// In a write transaction: creates the tables of this version, or (the stored version being older) drops the old
    /// ones, creates these and sends the projection `name` back to the start.
    pub(crate) async fn set_up(
        &self,
        conn: &mut SqliteConnection,
        name: &str,
    ) -> Result<(), SetUpError> {
        let stored: Option<(i64, String)> =
            sqlx::query_as("SELECT version, tables FROM read_models WHERE projection = ?1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let version = i64::from(self.version);
        match &stored {
            Some((stored, _)) if *stored > version => {
                return Err(SetUpError::Invalid(format!(
                    "read model `{name}` was built at version {stored}, newer than this worker's {version}"
                )));
            }
            Some((stored, tables)) if *stored < version => {
                let old: Vec<String> = serde_json::from_str(tables).map_err(|e| {
                    SetUpError::Invalid(format!(
                        "read model `{name}`: its stored table list is not a JSON array of names: {e}"
                    ))
                })?;
                for table in &old {
                    sqlx::query(&format!(
                        "DROP TABLE IF EXISTS \"{}\"",
                        table.replace('"', "")
                    ))
                    .execute(&mut *conn)
                    .await?;
                }
                for statement in [
                    "DELETE FROM checkpoints WHERE name = ?1",
                    "DELETE FROM dead_letters WHERE projection = ?1",
                ] {
                    sqlx::query(statement)
                        .bind(name)
                        .execute(&mut *conn)
                        .await?;
                }
                tracing::info!(projection = %name, from = stored, to = version, "read model version raised: rebuilding it from the start");
            }
            _ => {}
        }
        for (table, columns) in &self.tables {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" ({columns})"
            ))
            .execute(&mut *conn)
            .await?;
        }
        let tables = serde_json::to_string(&self.names()).unwrap_or_else(|_| "[]".to_owned());
        sqlx::query(
            "INSERT INTO read_models (projection, version, tables) VALUES (?1, ?2, ?3) \
             ON CONFLICT (projection) DO UPDATE SET version = excluded.version, tables = excluded.tables",
        )
        .bind(name)
        .bind(version)
        .bind(tables)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Empties the tables, in the rebuild's transaction.
    pub(crate) async fn empty(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        for table in self.names() {
            sqlx::query(&format!("DELETE FROM \"{table}\""))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Why a read model cannot be set up.
#[derive(Debug)]
pub(crate) enum SetUpError {
    Db(sqlx::Error),
    Invalid(String),
}

impl From<sqlx::Error> for SetUpError {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}
