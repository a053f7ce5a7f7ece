//! Transactional projections: the read model and the checkpoint commit together, on one active process.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::backend::{
    Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError, describe, wants,
};
use es_core::projection::{DeadLetter, HandlerError, Holder, ProjectionOptions};
use es_core::{DomainEvent, EventId, Position, RecordedEvent, StoreError};
use sqlx::{Connection, PgConnection};

use crate::PgEventStore;
use crate::dead_letters;
use crate::error::backend;
use crate::rows::{bind_half, position};

/// A projection whose read model lives in the same PostgreSQL database as the events. Its handler writes through
/// the open transaction that also moves the checkpoint, so each event's effect is applied exactly once, even across
/// crashes. Run it with [`PgProjectionWorker`].
///
/// ```no_run
/// # #![allow(dead_code)]
/// use es_core::{DomainEvent, RecordedEvent};
/// use es_core::projection::HandlerError;
/// use es_postgres::PgProjection;
///
/// #[derive(DomainEvent)]
/// enum AccountEvent { Deposited { amount: i64 } }
///
/// struct Balances;
///
/// #[async_trait::async_trait]
/// impl PgProjection for Balances {
///     type Event = AccountEvent;
///     fn name(&self) -> &str { "balances" }
///     async fn handle(&self, tx: &mut sqlx::PgConnection, event: AccountEvent, record: &RecordedEvent)
///         -> Result<(), HandlerError> {
///         let AccountEvent::Deposited { amount } = event;
///         sqlx::query("INSERT INTO balances (account, balance) VALUES ($1, $2) \
///                      ON CONFLICT (account) DO UPDATE SET balance = balances.balance + $2")
///             .bind(record.stream_id.as_str()).bind(amount).execute(tx).await?;
///         Ok(())
///     }
///     async fn reset(&self, tx: &mut sqlx::PgConnection) -> Result<(), HandlerError> {
///         sqlx::query("TRUNCATE balances").execute(tx).await?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait PgProjection: Send + Sync + 'static {
    /// The events it reads.
    type Event: DomainEvent;

    /// Its unique name.
    fn name(&self) -> &str;

    /// The stream categories it reads: by default its event type's
    /// [`DomainEvent::CATEGORIES`](es_core::DomainEvent::CATEGORIES) (empty: every category).
    fn categories(&self) -> &[&str] {
        Self::Event::CATEGORIES
    }

    /// Applies one event, writing through `tx`: a connection inside the batch's transaction. Do not commit it.
    ///
    /// # Errors
    /// Any error: the batch rolls back, and the runner retries, then applies the failure policy.
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError>;

    /// Applies a batch of events, in order, writing through `tx` (the batch's transaction, which also moves the
    /// checkpoint: do not commit it). By default it calls [`handle`](Self::handle) for each event; override it to
    /// write the whole batch at once (one multi-row `INSERT ... SELECT FROM UNNEST`, or `COPY`), which is what
    /// makes a read model fast: one statement per batch instead of one per event.
    ///
    /// When it fails, the worker rolls the batch back and applies its events again one at a time (each as a batch
    /// of one), in a new transaction, to find the event that fails: the events before it are kept, and the failure
    /// policy applies to that event alone, as with [`handle`](Self::handle). Events are in the feed's order, so
    /// each stream's events are in stream order.
    ///
    /// ```no_run
    /// # #![allow(dead_code)]
    /// use std::collections::HashMap;
    /// use es_core::{DomainEvent, RecordedEvent};
    /// use es_core::projection::HandlerError;
    /// use es_postgres::PgProjection;
    ///
    /// #[derive(DomainEvent)]
    /// enum AccountEvent { Deposited { amount: i64 } }
    ///
    /// struct Balances;
    ///
    /// #[async_trait::async_trait]
    /// impl PgProjection for Balances {
    ///     type Event = AccountEvent;
    ///     fn name(&self) -> &str { "balances" }
    ///     async fn handle(&self, tx: &mut sqlx::PgConnection, event: AccountEvent, record: &RecordedEvent)
    ///         -> Result<(), HandlerError> {
    ///         self.handle_batch(tx, vec![(event, record)]).await
    ///     }
    ///     async fn handle_batch(&self, tx: &mut sqlx::PgConnection, events: Vec<(AccountEvent, &RecordedEvent)>)
    ///         -> Result<(), HandlerError> {
    ///         // Sum per account first: one statement cannot update the same row twice.
    ///         let mut sums: HashMap<&str, i64> = HashMap::new();
    ///         for (AccountEvent::Deposited { amount }, record) in events {
    ///             *sums.entry(record.stream_id.as_str()).or_default() += amount;
    ///         }
    ///         let (accounts, amounts): (Vec<&str>, Vec<i64>) = sums.into_iter().unzip();
    ///         sqlx::query("INSERT INTO balances (account, balance) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
    ///                      ON CONFLICT (account) DO UPDATE SET balance = balances.balance + EXCLUDED.balance")
    ///             .bind(accounts).bind(amounts).execute(tx).await?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// Any error: as for [`handle`](Self::handle).
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: Vec<(Self::Event, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        for (event, record) in events {
            self.handle(tx, event, record).await?;
        }
        Ok(())
    }

    /// Empties the read model, in the transaction that also deletes the checkpoint (for a rebuild).
    ///
    /// # Errors
    /// Any error; the rebuild rolls back.
    async fn reset(&self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let _ = tx;
        Ok(())
    }
}

/// Runs a [`PgProjection`] with exactly-once effect on one process at a time.
///
/// It holds a session advisory lock on a dedicated connection and runs every transaction of the projection on that
/// same connection, so losing the connection releases both and nothing can commit without the lock. Other
/// processes running the same projection wait as standbys (their status names the holder) and take over within
/// `standby_poll` (1 s by default) of the active one's connection closing.
///
/// **Failures.** When its connection fails (a server restart, a terminated backend, a network drop), the worker
/// reports [`WorkerError::Lost`]: the runner opens a new connection, takes the lock again (or goes standby when
/// another process took it meanwhile) and carries on from the stored checkpoint, however often that happens.
///
/// **A silent holder** (a paused process, a partitioned host) keeps its TCP connection, and so its lock, alive.
/// The lock connection therefore runs with `idle_session_timeout` and `idle_in_transaction_session_timeout` set
/// to the [`lease`](Self::lease) (10 s by default, PostgreSQL 14 or newer): the server ends a holder that has sent
/// nothing for that long, and the active worker sends a heartbeat every third of it while it has nothing to do.
/// A standby so takes over within `lease + standby_poll` of the holder going silent (11 s by default). A handler
/// must not leave its transaction idle (waiting on something other than the database) for as long as the lease.
/// The checkpoint also moves by compare-and-set inside each batch's transaction.
///
/// ```no_run
/// # use es_core::{DomainEvent, RecordedEvent};
/// # use es_core::projection::HandlerError;
/// # use es_postgres::PgProjection;
/// # #[derive(DomainEvent)] enum E { Happened }
/// # struct Balances;
/// # #[async_trait::async_trait] impl PgProjection for Balances {
/// #     type Event = E; fn name(&self) -> &str { "balances" }
/// #     async fn handle(&self, _: &mut sqlx::PgConnection, _: E, _: &RecordedEvent) -> Result<(), HandlerError> { Ok(()) }
/// # }
/// use es_core::ProjectionRunner;
/// use es_core::projection::ProjectionOptions;
/// use es_postgres::{PgEventStore, PgProjectionWorker};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgEventStore::connect("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").await?;
/// let running = ProjectionRunner::new(store.clone())
///     .with(PgProjectionWorker::new(&store, Balances, ProjectionOptions::default()))
///     .start();
/// # running.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgProjectionWorker<P> {
    store: PgEventStore,
    projection: P,
    options: ProjectionOptions,
    name: String,
    lock_key: String,
    standby_poll: Duration,
    lease: Duration,
    /// The dedicated connection holding the advisory lock; `None` until acquired or after it failed.
    conn: Option<PgConnection>,
}

enum Failure {
    /// The event at this index failed (its error, whether transient).
    Handler(usize, String, bool),
    /// A batch handler failed without saying which event: the batch is applied again one event at a time.
    Batch,
    Fenced(Option<Position>),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}

impl<P: PgProjection> PgProjectionWorker<P> {
    /// A worker for `projection` on `store`'s database.
    pub fn new(store: &PgEventStore, projection: P, options: ProjectionOptions) -> Self {
        let name = projection.name().to_owned();
        Self {
            store: store.clone(),
            lock_key: format!("{}{name}", store.inner.sql.projection_lock_prefix),
            projection,
            options,
            name,
            standby_poll: Duration::from_secs(1),
            lease: DEFAULT_LEASE,
            conn: None,
        }
    }

    /// How often a standby tries to take over (default 1 s).
    pub fn standby_poll(mut self, interval: Duration) -> Self {
        self.standby_poll = interval;
        self
    }

    /// How long the server keeps the lock of a holder that has gone silent (default 10 s, at least 1 s); see the
    /// type's documentation.
    ///
    /// ```no_run
    /// # #![allow(dead_code)]
    /// # use es_core::{DomainEvent, RecordedEvent};
    /// # use es_core::projection::HandlerError;
    /// # use es_postgres::PgProjection;
    /// # #[derive(DomainEvent)] enum E { Happened }
    /// # struct Balances;
    /// # #[async_trait::async_trait] impl PgProjection for Balances {
    /// #     type Event = E; fn name(&self) -> &str { "balances" }
    /// #     async fn handle(&self, _: &mut sqlx::PgConnection, _: E, _: &RecordedEvent) -> Result<(), HandlerError> { Ok(()) }
    /// # }
    /// # async fn f(store: es_postgres::PgEventStore) {
    /// use std::time::Duration;
    /// use es_core::projection::ProjectionOptions;
    /// use es_postgres::PgProjectionWorker;
    ///
    /// let worker = PgProjectionWorker::new(&store, Balances, ProjectionOptions::default())
    ///     .lease(Duration::from_secs(5))
    ///     .standby_poll(Duration::from_millis(500)); // takeover within about 5.5 s
    /// # let _ = worker;
    /// # }
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    fn lost(&mut self, error: sqlx::Error, operation: &'static str) -> WorkerError {
        // The connection may be gone, and the lock with it: acquire again before the next batch.
        self.conn = None;
        WorkerError::Lost {
            projection: self.name.clone(),
            error: crate::error::describe(operation, &error),
        }
    }

    fn conn(&mut self) -> Result<&mut PgConnection, WorkerError> {
        self.conn.as_mut().ok_or_else(|| not_active(&self.name))
    }

    /// Takes the lock-holding connection out for one transaction; put it back with `self.conn = Some(..)`.
    fn take_conn(&mut self) -> Result<PgConnection, WorkerError> {
        self.conn.take().ok_or_else(|| not_active(&self.name))
    }

    /// Opens a connection of its own and tries the lock on it, setting the lease's timeouts in the same round trip.
    async fn try_lock(&self) -> Result<Option<PgConnection>, sqlx::Error> {
        let options = self.store.inner.pool.connect_options();
        let connect = PgConnection::connect_with(&options);
        let mut conn = tokio::time::timeout(self.store.inner.connect_timeout, connect)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let lease = format!("{}ms", self.lease.as_millis());
        let locked: bool = sqlx::query_scalar(LOCK)
            .bind(&self.lock_key)
            .bind(&lease)
            .fetch_one(&mut conn)
            .await?;
        if locked {
            Ok(Some(conn))
        } else {
            conn.close().await?;
            Ok(None)
        }
    }

    /// Who holds the lock, as the server shows it.
    async fn holder(&self) -> Result<Option<Holder>, sqlx::Error> {
        let row: Option<HolderRow> = sqlx::query_as(HOLDER)
            .bind(&self.lock_key)
            .fetch_optional(&self.store.inner.pool)
            .await?;
        Ok(
            row.map(|(pid, application_name, client_addr, since)| Holder {
                pid,
                application_name: application_name.filter(|name| !name.is_empty()),
                client_addr,
                since,
            }),
        )
    }

    /// Moves the checkpoint from `from` to `to` inside `tx`; `Fenced` when it was elsewhere.
    async fn move_checkpoint(
        &self,
        tx: &mut PgConnection,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), Failure> {
        let sql = &self.store.inner.sql;
        let query = match from {
            None => sqlx::query(&sql.create_checkpoint)
                .bind(&self.name)
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
            Some(from) => sqlx::query(&sql.move_checkpoint)
                .bind(&self.name)
                .bind(bind_half(from.commit))
                .bind(bind_half(from.prepare))
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
        };
        if query.execute(&mut *tx).await?.rows_affected() == 1 {
            Ok(())
        } else {
            Err(Failure::Fenced(
                load_checkpoint(&self.store, tx, &self.name).await?,
            ))
        }
    }

    /// Handles the event at `index` of a batch as a batch of one.
    async fn handle_one(
        &self,
        tx: &mut PgConnection,
        index: usize,
        event: &RecordedEvent,
    ) -> Result<(), Failure> {
        let typed = decode::<P::Event>(index, event)?;
        self.projection
            .handle_batch(tx, vec![(typed, event)])
            .await
            .map_err(|e| handler_failure(index, e))
    }

    /// Applies `events` and moves the checkpoint in one transaction: as one batch, or one event at a time.
    async fn apply_in_tx(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
        one_by_one: bool,
    ) -> Result<(), Failure> {
        let mut tx = Connection::begin(conn).await?;
        if one_by_one {
            for (index, event) in events.iter().enumerate() {
                self.handle_one(&mut tx, index, event).await?;
            }
        } else {
            let batch = events
                .iter()
                .enumerate()
                .map(|(index, event)| Ok((decode::<P::Event>(index, event)?, event)))
                .collect::<Result<Vec<_>, Failure>>()?;
            let single = batch.len() == 1;
            match self.projection.handle_batch(&mut tx, batch).await {
                Ok(()) => {}
                Err(error) => match handler_failure(0, error) {
                    Failure::Handler(..) if !single => return Err(Failure::Batch),
                    failure => return Err(failure),
                },
            }
        }
        self.move_checkpoint(&mut tx, from, to).await?;
        tx.commit().await?;
        Ok(())
    }

    fn failure(
        &mut self,
        failure: Failure,
        expected: Option<Position>,
        operation: &'static str,
    ) -> ApplyError {
        match failure {
            Failure::Handler(index, error, transient) => ApplyError::Handler(BatchError {
                index,
                error,
                transient,
                kept_before: false,
            }),
            Failure::Batch => ApplyError::Worker(WorkerError::Other {
                projection: self.name.clone(),
                error: "a batch handler failed".to_owned(),
            }),
            Failure::Fenced(actual) => ApplyError::Worker(WorkerError::Fenced {
                projection: self.name.clone(),
                expected,
                actual,
            }),
            Failure::Db(error) => ApplyError::Worker(self.lost(error, operation)),
        }
    }
}

/// Decodes the event at `index` of a batch; failing, that event's failure.
fn decode<E: DomainEvent>(index: usize, event: &RecordedEvent) -> Result<E, Failure> {
    event
        .decode::<E>()
        .map_err(|e| Failure::Handler(index, e.to_string(), false))
}

/// A handler's error; one that says the connection is gone is the worker's failure, not the event's.
fn handler_failure(index: usize, error: HandlerError) -> Failure {
    match error.downcast::<sqlx::Error>() {
        Ok(error) if crate::error::connection_lost(&error) => Failure::Db(*error),
        Ok(error) => Failure::Handler(index, error.to_string(), false),
        Err(error) => {
            let (error, transient) = describe(&error);
            Failure::Handler(index, error, transient)
        }
    }
}

/// A lock holder's pid, application name, client address and connection start.
type HolderRow = (
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// How long the server keeps a silent holder's lock by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Takes the projection's lock; on the lock connection, the server ends the session once it has been silent for
/// the lease (PostgreSQL 14 added `idle_session_timeout`; 13 keeps only the idle-in-transaction bound).
const LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0)), \
     set_config('idle_in_transaction_session_timeout', $2, false), \
     CASE WHEN current_setting('server_version_num')::int >= 140000 \
          THEN set_config('idle_session_timeout', $2, false) END";

/// The backend holding the projection's lock: advisory locks on a bigint key show its high half in `classid`
/// and its low half in `objid`.
const HOLDER: &str = "WITH k AS (SELECT hashtextextended($1, 0) AS key) \
     SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start \
     FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295 \
     LIMIT 1";

/// The error for an operation attempted without holding the projection's lock.
fn not_active(projection: &str) -> WorkerError {
    WorkerError::NotActive {
        projection: projection.to_owned(),
    }
}

async fn load_checkpoint(
    store: &PgEventStore,
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Position>, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(&store.inner.sql.load_checkpoint)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(tx, pos)| position(tx, pos)))
}

#[async_trait]
impl<P: PgProjection> ProjectionWorker for PgProjectionWorker<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> &ProjectionOptions {
        &self.options
    }

    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
        if self.conn.is_some() {
            return Ok(Acquired::Active);
        }
        let failed = |error: sqlx::Error| WorkerError::Store(backend("acquire")(error));
        match self.try_lock().await.map_err(failed)? {
            Some(conn) => {
                tracing::info!(projection = %self.name, "became the active instance");
                self.conn = Some(conn);
                Ok(Acquired::Active)
            }
            None => Ok(Acquired::Standby {
                holder: self.holder().await.map_err(failed)?,
                retry_in: self.standby_poll,
            }),
        }
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(self.lease / 3)
    }

    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        let result = sqlx::query("SELECT 1").execute(self.conn()?).await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => Err(self.lost(error, "heartbeat")),
        }
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        wants::<P::Event>(self.projection.categories(), stream, event_type)
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        let (store, name) = (self.store.clone(), self.name.clone());
        match load_checkpoint(&store, self.conn()?, &name).await {
            Ok(position) => Ok(position),
            Err(error) => Err(self.lost(error, "load_checkpoint")),
        }
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError> {
        let mut conn = self.take_conn().map_err(ApplyError::Worker)?;
        let result = match self.apply_in_tx(&mut conn, events, from, to, false).await {
            // Which event failed? Apply them one by one (a transient failure may not come back at all).
            Err(Failure::Batch) => self.apply_in_tx(&mut conn, events, from, to, true).await,
            other => other,
        };
        self.conn = Some(conn);
        result.map_err(|failure| self.failure(failure, from, "apply"))
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let mut conn = self.take_conn()?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = Connection::begin(&mut conn).await?;
            dead_letters::park(sql, &mut tx, &letter).await?;
            self.move_checkpoint(&mut tx, from, letter.position).await?;
            tx.commit().await?;
            Ok::<_, Failure>(())
        }
        .await;
        self.conn = Some(conn);
        result.map_err(|failure| match self.failure(failure, from, "park") {
            ApplyError::Worker(error) => error,
            ApplyError::Handler(error) => WorkerError::Other {
                projection: self.name.clone(),
                error: error.error,
            },
        })
    }

    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        let mut conn = self.take_conn()?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = Connection::begin(&mut conn).await?;
            match to {
                None => {
                    self.projection
                        .reset(&mut tx)
                        .await
                        .map_err(|e| Failure::Handler(0, e.to_string(), false))?;
                    sqlx::query(&sql.delete_checkpoint)
                        .bind(&self.name)
                        .execute(&mut *tx)
                        .await?;
                }
                Some(to) => self.move_checkpoint(&mut tx, from, to).await?,
            }
            tx.commit().await?;
            Ok::<_, Failure>(())
        }
        .await;
        self.conn = Some(conn);
        result.map_err(|failure| match self.failure(failure, from, "reset") {
            ApplyError::Worker(error) => error,
            ApplyError::Handler(error) => WorkerError::Reset {
                projection: self.name.clone(),
                error: error.error,
            },
        })
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        let (store, name) = (self.store.clone(), self.name.clone());
        Ok(dead_letters::list(&store.inner.sql, self.conn()?, &name).await?)
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let mut conn = self.take_conn().map_err(ApplyError::Worker)?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = Connection::begin(&mut conn).await?;
            self.handle_one(&mut tx, 0, event).await?;
            sqlx::query(&sql.remove_dead_letter)
                .bind(&self.name)
                .bind(letter.event_id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, Failure>(())
        }
        .await;
        self.conn = Some(conn);
        result.map_err(|failure| self.failure(failure, None, "redrive"))
    }
}

impl PgEventStore {
    /// Records that `consumer` has processed `event_id`, on `tx` (inside the transaction that records the effect's
    /// bookkeeping). Returns `true` the first time, `false` when it was already recorded: skip the effect then.
    /// The de-duplication helper for at-least-once handlers with side effects outside the database.
    ///
    /// ```no_run
    /// # #![allow(dead_code)]
    /// # use es_core::EventId;
    /// # async fn send_email() {}
    /// # async fn f(store: es_postgres::PgEventStore, event_id: EventId) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// if store.mark_processed(&mut tx, "welcome-mail", event_id).await? {
    ///     send_email().await;
    /// }
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    pub async fn mark_processed(
        &self,
        tx: &mut PgConnection,
        consumer: &str,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.inner.sql.mark_processed)
            .bind(consumer)
            .bind(event_id.as_uuid())
            .execute(tx)
            .await
            .map_err(backend("mark_processed"))?;
        Ok(done.rows_affected() == 1)
    }
}
