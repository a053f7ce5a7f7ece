//! Declared read models: a projection names its tables and a version; the worker creates them in a schema of that
//! version's own before the first batch, points readers at the live version through views, and switches the views
//! in one transaction once a new version has caught up (blue/green), then drops the old version's schema.

use es_core::Position;
use md5::{Digest, Md5};
use sqlx::{Connection, PgConnection};

use crate::PgEventStore;
use crate::schema::SchemaName;

/// The tables of a projection's read model and their version. Declare it in
/// [`PgProjection::read_model`](super::PgProjection::read_model); the worker then owns the DDL:
///
/// - **Setup.** Before the first batch, each table is created (`CREATE TABLE IF NOT EXISTS`) in the version's own
///   schema, and the handler's connection has that schema first on its `search_path`, so handlers name tables
///   without a schema. A rebuild empties the tables (`TRUNCATE`).
/// - **Readers** query views of the same names in the store's schema (or [`readers_in`](Self::readers_in)), which
///   point at the live version.
/// - **A new version** (raise [`new`](Self::new)'s number when the tables or their meaning change) is built from the
///   start into its own schema while the live version keeps serving; the worker is named `name@v2` (`name` for
///   version 1) and has its own checkpoint. When it has caught up with the head, the views switch to it in one
///   transaction (readers see the old model or the new one, never a half-built one), the old version is marked
///   retired (its workers stop taking over) and its schema is dropped.
///
/// ```
/// use es_postgres::ReadModel;
///
/// let model = ReadModel::new(2)
///     .table("balances", "account text PRIMARY KEY, balance bigint NOT NULL, deposits bigint NOT NULL")
///     .table("big_deposits", "event_id uuid PRIMARY KEY, account text NOT NULL, amount bigint NOT NULL");
/// assert_eq!(model.version(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadModel {
    version: u32,
    tables: Vec<(String, String)>,
    readers: Option<String>,
}

impl ReadModel {
    /// Version `version` (at least 1) of a read model, without tables yet.
    pub fn new(version: u32) -> Self {
        Self {
            version: version.max(1),
            tables: Vec::new(),
            readers: None,
        }
    }

    /// Adds table `name` (lower-case letters, digits and `_`), defined by `columns`: what goes between the
    /// parentheses of `CREATE TABLE` (columns and constraints).
    pub fn table(mut self, name: &str, columns: &str) -> Self {
        self.tables.push((name.to_owned(), columns.to_owned()));
        self
    }

    /// The schema where readers find the views (default: the store's schema).
    pub fn readers_in(mut self, schema: &str) -> Self {
        self.readers = Some(schema.to_owned());
        self
    }

    /// Its version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The name the worker of this version runs under: `projection` for version 1, `projection@vN` after.
    pub(crate) fn worker_name(&self, projection: &str) -> String {
        match self.version {
            1 => projection.to_owned(),
            v => format!("{projection}@v{v}"),
        }
    }
}

/// Where a declared read model stands, as its worker found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Readers see this version.
    Live,
    /// Building while an older version serves; switched to once caught up.
    Building,
}

/// A declared read model bound to a store and a projection: its schemas and statements.
#[derive(Debug)]
pub(crate) struct Bound {
    model: ReadModel,
    projection: String,
    /// The version's own schema, quoted.
    own: String,
    own_name: String,
    /// The readers' schema, quoted.
    readers: String,
    registry: String,
    lock_key: String,
}

/// Why a read model cannot be set up or switched.
#[derive(Debug)]
pub(crate) enum ModelError {
    Db(sqlx::Error),
    Invalid(String),
}

impl From<sqlx::Error> for ModelError {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}

/// The tables the store keeps in its own schema, which read-model views there must not shadow.
const STORE_TABLES: [&str; 14] = [
    "events",
    "documents",
    "document_versions",
    "streams",
    "snapshots",
    "checkpoints",
    "dead_letters",
    "processed_events",
    "processes",
    "process_timers",
    "projection_partitions",
    "projection_workers",
    "read_models",
    "_sqlx_migrations",
];

impl Bound {
    pub(crate) fn new(
        store: &PgEventStore,
        projection: &str,
        model: ReadModel,
    ) -> Result<Self, String> {
        let store_schema = store.schema().as_str();
        let readers = match &model.readers {
            Some(schema) => {
                SchemaName::new(schema).map_err(|e| format!("read model of `{projection}`: {e}"))?
            }
            None => store.schema().clone(),
        };
        for (table, _) in &model.tables {
            SchemaName::new(table)
                .map_err(|e| format!("read model of `{projection}`: table `{table}`: {e}"))?;
            if readers.as_str() == store_schema && STORE_TABLES.contains(&table.as_str()) {
                return Err(format!(
                    "read model of `{projection}`: table `{table}` would shadow the store's own table; \
                     rename it or put the readers' views in another schema (`readers_in`)"
                ));
            }
        }
        let plain: String = projection
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' => c,
                'A'..='Z' => c.to_ascii_lowercase(),
                _ => '_',
            })
            .collect();
        let mut own_name = format!("{store_schema}_rm_{plain}_v{}", model.version);
        if own_name.len() > 63 {
            let digest = Md5::digest(projection.as_bytes());
            let short: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
            own_name = format!("{store_schema}_rm_{short}_v{}", model.version);
        }
        Ok(Self {
            own: format!("\"{own_name}\""),
            own_name,
            readers: readers.quoted(),
            registry: format!("{}.read_models", store.schema().quoted()),
            lock_key: format!("es-read-model:{store_schema}:{projection}"),
            projection: projection.to_owned(),
            model,
        })
    }

    fn table_names(&self) -> Vec<String> {
        self.model.tables.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Creates the version's schema and tables when missing, registers it (live when no version is, else
    /// building), points the readers' views at it when it is live, and puts its schema first on `conn`'s
    /// `search_path` for the handlers.
    pub(crate) async fn set_up(&self, conn: &mut PgConnection) -> Result<Stage, ModelError> {
        let mut tx = conn.begin().await?;
        self.lock(&mut tx).await?;
        let versions: Vec<(i32, String)> = sqlx::query_as(&format!(
            "SELECT version, state FROM {} WHERE projection = $1",
            self.registry
        ))
        .bind(&self.projection)
        .fetch_all(&mut *tx)
        .await?;
        let version = i32::try_from(self.model.version).unwrap_or(i32::MAX);
        let live = versions.iter().find(|(_, s)| s == "live").map(|(v, _)| *v);
        let mine = versions
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, s)| s.as_str());
        let stage = match (mine, live) {
            (Some("retired"), _) => {
                return Err(ModelError::Invalid(format!(
                    "read model `{}` version {version} was replaced by version {}; this worker builds the old one",
                    self.projection,
                    live.map_or_else(|| "?".to_owned(), |v| v.to_string())
                )));
            }
            (_, Some(live)) if live > version => {
                return Err(ModelError::Invalid(format!(
                    "read model `{}` is live at version {live}, newer than this worker's {version}",
                    self.projection
                )));
            }
            (_, Some(live)) if live == version => Stage::Live,
            (_, Some(_)) => Stage::Building,
            (_, None) => Stage::Live,
        };
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.own))
            .execute(&mut *tx)
            .await?;
        for (table, columns) in &self.model.tables {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {}.\"{table}\" ({columns})",
                self.own
            ))
            .execute(&mut *tx)
            .await?;
        }
        if mine.is_none() {
            let state = match stage {
                Stage::Live => "live",
                Stage::Building => "building",
            };
            sqlx::query(&format!(
                "INSERT INTO {} (projection, version, schema_name, tables, state, live_since) \
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'live' THEN now() END)",
                self.registry
            ))
            .bind(&self.projection)
            .bind(version)
            .bind(&self.own_name)
            .bind(self.table_names())
            .bind(state)
            .execute(&mut *tx)
            .await?;
            if stage == Stage::Live {
                self.point_views(&mut tx, &[]).await?;
            }
        }
        tx.commit().await?;
        if stage == Stage::Live {
            self.drop_retired(conn).await?;
        }
        sqlx::query("SELECT set_config('search_path', $1, false)")
            .bind(format!("{}, public", self.own))
            .execute(&mut *conn)
            .await?;
        Ok(stage)
    }

    async fn lock(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&self.lock_key)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Points the readers' views at this version's tables, dropping the views of `old_tables` it does not have.
    async fn point_views(
        &self,
        tx: &mut PgConnection,
        old_tables: &[String],
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.readers))
            .execute(&mut *tx)
            .await?;
        let mine = self.table_names();
        for table in old_tables.iter().filter(|t| !mine.contains(t)) {
            sqlx::query(&format!("DROP VIEW IF EXISTS {}.\"{table}\"", self.readers))
                .execute(&mut *tx)
                .await?;
        }
        for table in &mine {
            sqlx::query(&format!(
                "DROP VIEW IF EXISTS {r}.\"{table}\"; ",
                r = self.readers
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "CREATE VIEW {r}.\"{table}\" AS SELECT * FROM {o}.\"{table}\"",
                r = self.readers,
                o = self.own
            ))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Switches readers to this version in one transaction and retires the live one; then drops the retired
    /// version's schema (best effort: waiting at most 5 s for readers still in its tables).
    pub(crate) async fn promote(&self, conn: &mut PgConnection) -> Result<(), ModelError> {
        let version = i32::try_from(self.model.version).unwrap_or(i32::MAX);
        let mut tx = conn.begin().await?;
        self.lock(&mut tx).await?;
        let retired: Vec<(String, Vec<String>)> = sqlx::query_as(&format!(
            "UPDATE {} SET state = 'retired' WHERE projection = $1 AND state = 'live' AND version < $2 \
             RETURNING schema_name, tables",
            self.registry
        ))
        .bind(&self.projection)
        .bind(version)
        .fetch_all(&mut *tx)
        .await?;
        let old_tables: Vec<String> = retired.iter().flat_map(|(_, t)| t.clone()).collect();
        self.point_views(&mut tx, &old_tables).await?;
        sqlx::query(&format!(
            "UPDATE {} SET state = 'live', live_since = now() WHERE projection = $1 AND version = $2",
            self.registry
        ))
        .bind(&self.projection)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(projection = %self.projection, version, "readers switched to the new read model version");
        self.drop_retired(conn).await?;
        Ok(())
    }

    /// Drops the schemas of retired versions, waiting at most 5 s for readers or batches still in their tables;
    /// one that cannot be dropped now is left for the next time this worker becomes active.
    async fn drop_retired(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let retired: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT schema_name FROM {} WHERE projection = $1 AND state = 'retired'",
            self.registry
        ))
        .bind(&self.projection)
        .fetch_all(&mut *conn)
        .await?;
        for schema in retired {
            let mut tx = conn.begin().await?;
            sqlx::query("SET LOCAL lock_timeout = '5s'")
                .execute(&mut *tx)
                .await?;
            let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut *tx)
                .await;
            match dropped {
                Ok(_) => tx.commit().await?,
                Err(error) => {
                    tracing::warn!(projection = %self.projection, %schema, %error, "could not drop a retired read model yet");
                }
            }
        }
        Ok(())
    }

    /// Inside a batch's transaction: whether this version is still current (not retired), holding its registry
    /// row so a switch waits for the batch; a retired version's workers commit nothing more.
    pub(crate) async fn still_current(&self, tx: &mut PgConnection) -> Result<bool, sqlx::Error> {
        let state: Option<String> = sqlx::query_scalar(&format!(
            "SELECT state FROM {} WHERE projection = $1 AND version = $2 FOR SHARE",
            self.registry
        ))
        .bind(&self.projection)
        .bind(i32::try_from(self.model.version).unwrap_or(i32::MAX))
        .fetch_optional(tx)
        .await?;
        Ok(state.as_deref() != Some("retired"))
    }

    /// The error of a worker whose version was retired.
    pub(crate) fn retired(&self) -> String {
        format!(
            "read model `{}` version {} was retired: a newer version is live, so this worker stops",
            self.projection, self.model.version
        )
    }

    /// Empties the version's tables, in `tx` (a rebuild).
    pub(crate) async fn truncate(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.model.tables.is_empty() {
            return Ok(());
        }
        let tables: Vec<String> = self
            .model
            .tables
            .iter()
            .map(|(t, _)| format!("{}.\"{t}\"", self.own))
            .collect();
        sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// Whether a building version at `to` has caught up with the store's head.
pub(crate) async fn caught_up(store: &PgEventStore, to: Position) -> Result<bool, sqlx::Error> {
    let head: Option<(i64, i64)> = sqlx::query_as(&store.inner.sql.events.head)
        .fetch_optional(&store.inner.pool)
        .await?;
    Ok(head.is_none_or(|(tx, pos)| crate::rows::position(tx, pos) <= to))
}
