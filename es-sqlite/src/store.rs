//! The store: one file, one writer connection, a pool of readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use es_core::backend::{FoldRead, Visit};
use es_core::store::Direction;
use es_core::store::{AppendResult, EventLimits, EventStream, MultiAppend, Query, QueryRead};
use es_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError, StreamId,
    StreamRead,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};
use tokio::sync::{Mutex, watch};

use crate::error::{SqliteSetupError, backend};
use crate::rows::{EVENT_COLUMNS, EventRow, feed_page, position_of, recorded};
use crate::transaction::Writer;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// When a commit is on disk ([`SqliteEventStoreBuilder::durability`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is synced to disk before `append` returns; an acknowledged event survives a
    /// power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: synced at WAL checkpoints only. Never corrupt, safe against a crash of the process;
    /// the last commits before a power loss or an OS crash can be lost.
    Normal,
}

/// Settings of a [`SqliteEventStore`].
///
/// ```
/// use std::time::Duration;
/// use es_sqlite::{Durability, SqliteEventStore};
///
/// let builder = SqliteEventStore::builder()
///     .readers(4)
///     .busy_timeout(Duration::from_secs(10))
///     .durability(Durability::Full)
///     .poll_interval(Duration::from_millis(20));
/// # drop(builder);
/// ```
#[derive(Clone, Debug)]
pub struct SqliteEventStoreBuilder {
    readers: u32,
    pub(crate) busy_timeout: Duration,
    durability: Durability,
    poll_interval: Duration,
    limits: EventLimits,
}

impl Default for SqliteEventStoreBuilder {
    fn default() -> Self {
        Self {
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Full,
            poll_interval: Duration::from_millis(50),
            limits: EventLimits::default(),
        }
    }
}

impl SqliteEventStoreBuilder {
    /// Connections for reads (4 by default); writes have one of their own.
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// How long a connection waits for another process's write lock before SQLite reports busy (5 s by default);
    /// a write is then tried again for as long before the error reaches the caller.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// When a commit is on disk ([`Durability::Full`] by default).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How often subscribers look for events appended by other processes sharing the file (50 ms by default;
    /// this process's appends wake them at once).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// What an event may be (the same bounds as every other store by default).
    pub fn limits(mut self, limits: EventLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Opens the store in the file at `path`, creating it (and its tables) when missing, bringing its tables up to
    /// date otherwise. Several processes may open the same file.
    ///
    /// # Errors
    /// [`SqliteSetupError`] naming the file.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<SqliteEventStore, SqliteSetupError> {
        let path = path.as_ref().to_path_buf();
        let failed = |source| SqliteSetupError::Open {
            path: path.clone(),
            source,
        };
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match self.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(self.busy_timeout)
            .foreign_keys(false);
        // Processes opening one file take turns to set it up (switching a new file to WAL takes its lock without
        // waiting) and to migrate it (sqlx's migrator has no lock on SQLite: processes opening a new file at once each
        // created the tables, "table events already exists"), by a lock on a file beside the database.
        let turn = crate::migrate::turn(&path)
            .await
            .map_err(|e| failed(sqlx::Error::Io(e)))?;
        let writer = options.connect().await.map_err(failed)?;
        // On a pool of its own: `Migrator::run` on a `&mut SqliteConnection` makes this future not `Send`, so `open`
        // could not be spawned.
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(failed)?;
        let migrated = MIGRATOR.run(&migrator).await;
        migrator.close().await;
        drop(turn);
        migrated.map_err(|source| SqliteSetupError::Migrate {
            path: path.clone(),
            source,
        })?;
        let shared = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options.clone());
        let readers = SqlitePoolOptions::new()
            .max_connections(self.readers)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(failed)?;
        let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
            .fetch_one(&readers)
            .await
            .map_err(failed)?;
        let inner = Arc::new(Inner {
            writer: Arc::new(Mutex::new(Writer {
                conn: writer,
                open: false,
            })),
            shared,
            readers,
            path,
            limits: self.limits,
            busy_timeout: self.busy_timeout,
            head: watch::Sender::new(u64::try_from(head.unwrap_or(0)).unwrap_or(0)),
        });
        let watcher = options.read_only(true);
        tokio::spawn(crate::live::watch_other_processes(
            Arc::downgrade(&inner),
            watcher,
            self.poll_interval,
        ));
        Ok(SqliteEventStore { inner })
    }
}

/// An event store in one SQLite file: events, snapshots, checkpoints, dead letters, process state and timers, the
/// event catalog and the control plane. Clones share the connections. See the [crate] docs for how it uses
/// SQLite.
#[derive(Clone, Debug)]
pub struct SqliteEventStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// The store's own writes, one transaction at a time.
    pub(crate) writer: Arc<Mutex<Writer>>,
    /// The pool [`SqliteEventStore::writer`] hands out.
    shared: SqlitePool,
    pub(crate) readers: SqlitePool,
    pub(crate) path: PathBuf,
    pub(crate) limits: EventLimits,
    pub(crate) busy_timeout: Duration,
    /// The newest position this process knows of; subscribers wait on it.
    pub(crate) head: watch::Sender<u64>,
}

impl SqliteEventStore {
    /// A builder with the defaults.
    pub fn builder() -> SqliteEventStoreBuilder {
        SqliteEventStoreBuilder::default()
    }

    /// Opens (creating and migrating when needed) the store in the file at `path` with the defaults.
    ///
    /// # Errors
    /// [`SqliteSetupError`] naming the file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SqliteSetupError> {
        Self::builder().open(path).await
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Copies every committed event from the write-ahead log (the `-wal` file beside the database) into the database
    /// file and empties the log (`PRAGMA wal_checkpoint(TRUNCATE)`), then closes the store's read connections. Call
    /// it before the process exits: a process that exits without it leaves its latest writes in the `-wal` file,
    /// which is part of the database (SQLite reads it back on the next open), so a copy of the database file alone
    /// would miss them. Appends after `close` still work (the writer stays open), but are in the log again.
    ///
    /// For a backup of a store in use, copy it with `VACUUM INTO 'backup.db'` (a consistent snapshot), or copy the
    /// database file together with its `-wal` file while no process writes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("es-close-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
    /// use es_sqlite::SqliteEventStore;
    ///
    /// let store = SqliteEventStore::open(dir.join("events.db")).await?;
    /// let stream = StreamId::new("acct-1")?;
    /// store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("Opened", 1, serde_json::json!({}))]).await?;
    /// store.close().await?;
    ///
    /// // The database file alone now holds the history.
    /// std::fs::copy(dir.join("events.db"), dir.join("copy.db"))?;
    /// let copy = SqliteEventStore::open(dir.join("copy.db")).await?;
    /// assert_eq!(copy.read_all(Position::START, 10).await?.len(), 1);
    /// # copy.close().await?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the checkpoint fails. While another process reads the file, the checkpoint copies
    /// what it can; the rest goes at a later checkpoint (SQLite's own, or that process's `close`).
    pub async fn close(&self) -> Result<(), StoreError> {
        {
            let mut writer = self.inner.writer.lock().await;
            if writer.open {
                sqlx::query("ROLLBACK")
                    .execute(&mut writer.conn)
                    .await
                    .map_err(backend("close"))?;
                writer.open = false;
            }
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut writer.conn)
                .await
                .map_err(backend("close"))?;
        }
        self.inner.readers.close().await;
        self.inner.shared.close().await;
        Ok(())
    }

    /// The connection pool for reads, for queries of your own (read models in the same file).
    pub fn readers(&self) -> &SqlitePool {
        &self.inner.readers
    }

    /// A pool of one connection for writes of your own (creating read-model tables, say). It is not the store's
    /// own writer: its writes take turns with the store's by SQLite's lock and busy timeout, as another process's
    /// do, so hold a transaction on it briefly; read models written with their checkpoint belong in a
    /// [`SqliteProjection`](crate::SqliteProjection).
    pub fn writer(&self) -> &SqlitePool {
        &self.inner.shared
    }

    /// Tells this process's subscribers that `head` was committed.
    pub(crate) fn committed(&self, head: u64) {
        crate::live::advance(&self.inner.head, head);
    }
}

fn param(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let started = Instant::now();
        let count = events.len();
        let result = crate::append::append(self, stream, expected, events).await;
        es_core::telemetry::record_append(stream.category(), count, &result, started.elapsed());
        result
    }

    async fn append_multi(&self, append: MultiAppend) -> Result<Vec<AppendResult>, StoreError> {
        es_core::telemetry::measure_append_multi(append, |append| {
            crate::multi::append_multi(self, append)
        })
        .await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Option<Position>,
    ) -> Result<QueryRead, StoreError> {
        crate::query::read_query(self, query, after).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = param(read.limit as u64);
        let rows: Vec<EventRow> = match read.direction {
            Direction::Forward => {
                let from = read.from.map_or(1, |v| param(v.get()));
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version >= ?2 \
                     ORDER BY stream_version LIMIT ?3"
                ))
                .bind(stream.as_str())
                .bind(from)
                .bind(limit)
                .fetch_all(&self.inner.readers)
                .await
            }
            Direction::Backward => {
                let from = read.from.map_or(i64::MAX, |v| param(v.get()));
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version <= ?2 \
                     ORDER BY stream_version DESC LIMIT ?3"
                ))
                .bind(stream.as_str())
                .bind(from)
                .bind(limit)
                .fetch_all(&self.inner.readers)
                .await
            }
        }
        .map_err(backend("read_stream"))?;
        rows.into_iter().map(recorded).collect()
    }

    async fn fold_stream(
        &self,
        stream: &StreamId,
        read: FoldRead,
        visit: &mut Visit<'_>,
    ) -> Result<usize, StoreError> {
        crate::fold::fold_stream(self, stream, read, visit).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE global_position > ?1 ORDER BY global_position LIMIT ?2"
        ))
        .bind(position_of(after))
        .bind(param(limit as u64))
        .fetch_all(&self.inner.readers)
        .await
        .map_err(backend("read_all"))?;
        feed_page(rows)
    }

    fn subscribe_all(&self, after: Position) -> EventStream {
        crate::live::subscribe(self.clone(), after)
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
            .fetch_one(&self.inner.readers)
            .await
            .map_err(backend("head"))?;
        Ok(head.map(|h| {
            let h = u64::try_from(h).unwrap_or(0);
            Position::new(h, h)
        }))
    }

    async fn count_after(&self, after: Position) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position > ?1")
                .bind(position_of(after))
                .fetch_one(&self.inner.readers)
                .await
                .map_err(backend("count_after"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn contains_event(
        &self,
        stream: &StreamId,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM events WHERE event_id = ?1 AND stream_id = ?2")
                .bind(event_id.as_uuid())
                .bind(stream.as_str())
                .fetch_optional(&self.inner.readers)
                .await
                .map_err(backend("contains_event"))?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transaction_dropped_uncommitted_is_rolled_back_and_frees_the_file() {
        let dir =
            std::env::temp_dir().join(format!("es-sqlite-unit-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteEventStore::open(dir.join("store.db")).await.unwrap();
        {
            // What a cancelled caller leaves: a write inside an open transaction.
            let mut tx = store.begin().await.unwrap();
            sqlx::query(
                "INSERT INTO checkpoints (name, commit_position, global_position, updated_at) VALUES ('left', 1, 1, 0)",
            )
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        // Another process can write without this store writing again: the lock was let go.
        let mut other = SqliteConnectOptions::new()
            .filename(store.path())
            .busy_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        let stream = StreamId::new("s-1").unwrap();
        let event = NewEvent::new("Happened", 1, serde_json::json!({}));
        store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
            .fetch_one(store.readers())
            .await
            .unwrap();
        assert_eq!(left, 0, "the abandoned write was rolled back");
        assert_eq!(store.read_all(Position::START, 10).await.unwrap().len(), 1);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
