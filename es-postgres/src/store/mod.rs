//! The PostgreSQL event store: construction, migrations and the read side of the `EventStore` contract.

use std::sync::Arc;
use std::time::Duration;

use es_core::store::{AppendResult, EventLimits};
use es_core::{ExpectedVersion, NewEvent, StoreError, StreamId};
use sqlx::PgPool;

use crate::append::Request;
use crate::error::{PgError, PgSetupError};
use crate::group_commit::Committer;
use crate::live::Live;
use crate::schema::{SchemaName, Sql};

mod builder;
mod event_store;
mod sql;
#[cfg(test)]
mod tests;

pub use builder::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_COUNT_CAP, DEFAULT_STREAM_LOCK_TIMEOUT, PgEventStoreBuilder,
};
pub(crate) use event_store::{read_all, read_filtered};
pub(crate) use sql::EventSql;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// An event store on PostgreSQL (13 or newer): events, snapshots and checkpoints in one schema.
///
/// - **Appends** are one round trip: a server-side function (as migrated: `sql/append.sql` in this crate) locks the
///   stream, checks the expected version, and inserts the batch with one `UNNEST` insert (idempotency is checked
///   by the insert itself). Appends from
///   concurrent tasks that arrive while others are on their way share one round trip and one transaction (group
///   commit, see [`PgEventStoreBuilder::max_appends_in_flight`]), each with its own outcome. They run over a few
///   connections of the store's own, opened with the pool's options, not through the pool.
/// - **The global order never skips**: `read_all` and `subscribe_all` read in `(transaction id, position)` order
///   and only below the oldest running transaction, so an event that commits late is never passed over. A
///   write transaction left open anywhere in the cluster delays readers (never makes them skip): set
///   `idle_in_transaction_session_timeout`, and alert on old transaction ids. After a dump/restore into a new
///   cluster, advance the transaction id counter past `max(transaction_id)` before appending.
/// - **Live subscriptions** wake at once on appends from this process, through `LISTEN`/`NOTIFY` on appends from
///   others (an empty notification sent after commit, never inside the append's transaction), and poll every
///   250 ms (configurable) in case a notification is lost.
///
/// ```no_run
/// use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use es_postgres::PgEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgEventStore::builder()
///     .schema("es")
///     .connect("postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
///     .await?;
/// store.migrate().await?;
/// let stream = StreamId::new("light-1")?;
/// store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("SwitchedOn", 1, serde_json::json!({}))]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgEventStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    /// Where the global feed is read: the pool itself, or a streaming replica's.
    pub(crate) feed: PgPool,
    pub(crate) schema: SchemaName,
    pub(crate) sql: Sql,
    pub(crate) live: Live,
    pub(crate) poll_interval: Duration,
    pub(crate) page_size: usize,
    /// The most events an operator's count reads (lag, held back): past it, an estimate from positions.
    pub(crate) count_cap: u64,
    pub(crate) committer: Arc<Committer>,
    /// How long opening a connection may take.
    pub(crate) connect_timeout: Duration,
    /// What an event may be.
    pub(crate) limits: EventLimits,
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventStore")
            .field("schema", &self.inner.schema.as_str())
            .field("pool_size", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgEventStore {
    /// An append after checking the events against the store's limits.
    pub(super) async fn append_checked(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.limits.check(stream, &events)?;
        if events.iter().any(|e| !e.tags.is_empty()) {
            // Tagged events take their tags' locks (conditional appends wait for them): the multi-stream path.
            let append =
                es_core::store::MultiAppend::new().append(stream.clone(), expected, events);
            return match crate::multi::append_multi(self, append).await {
                Ok(mut results) => results.pop().ok_or_else(|| StoreError::Backend {
                    operation: "append",
                    source: "append_multi returned no result".into(),
                }),
                Err(StoreError::Conflicts { mut conflicts }) if conflicts.len() == 1 => {
                    let conflict = conflicts.remove(0);
                    Err(StoreError::Conflict {
                        stream: conflict.stream,
                        expected: conflict.expected,
                        actual: conflict.actual,
                    })
                }
                Err(other) => Err(other),
            };
        }
        let request = Request {
            stream: stream.clone(),
            expected,
            events,
        };
        let result = self.inner.committer.append(request).await?;
        if !result.replayed {
            self.inner.live.committed();
        }
        Ok(result)
    }

    /// A builder with the defaults: schema `es`, 10 connections, 250 ms poll interval.
    pub fn builder() -> PgEventStoreBuilder {
        PgEventStoreBuilder::default()
    }

    /// Connects to `url` with the defaults.
    ///
    /// # Errors
    /// See [`PgEventStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, PgSetupError> {
        Self::builder().connect(url).await
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &SchemaName {
        &self.inner.schema
    }

    /// Creates the schema and its tables, or brings them up to date. Safe to run from several processes at
    /// once: they take turns on an advisory lock, and migrations already applied are skipped.
    ///
    /// # Errors
    /// [`PgSetupError::Connect`], [`PgSetupError::Migrate`].
    pub async fn migrate(&self) -> Result<(), PgSetupError> {
        let schema = self.inner.schema.clone();
        let name = schema.to_string();
        let migrate_error =
            move |source: Box<dyn std::error::Error + Send + Sync>| PgSetupError::Migrate {
                schema: name.clone(),
                source,
            };
        // A connection of its own: session locks and the search path die with it, even after an error.
        let options = self.inner.pool.connect_options();
        let mut conn = self
            .inner
            .pool
            .acquire()
            .await
            .map_err(|source| PgSetupError::Connect {
                host: options.get_host().to_owned(),
                port: options.get_port(),
                source,
            })?
            .detach();
        let statements = [
            format!("SELECT pg_advisory_lock(hashtextextended('es-migrate:{schema}', 0))"),
            format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted()),
            format!("SET search_path TO {}", schema.quoted()),
        ];
        for statement in &statements {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .map_err(|e| migrate_error(Box::new(PgError::new(e))))?;
        }
        // `run_direct`, not `run`: through `Acquire` the future is not `Send`.
        let result = MIGRATOR
            .run_direct(&mut conn)
            .await
            .map_err(|e| migrate_error(Box::new(e)));
        let closed = sqlx::Connection::close(conn).await;
        result?;
        closed.map_err(|e| migrate_error(Box::new(e)))
    }

    /// The connection pool, for running your own queries beside the store.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
}
