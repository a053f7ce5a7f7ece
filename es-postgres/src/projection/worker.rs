//! The transactional worker: each batch's read-model writes and its checkpoint commit in one transaction, on a
//! dedicated connection that holds the claim (an advisory lock, or a partition's lease).

use std::time::Duration;

use async_trait::async_trait;
use es_core::backend::{
    Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError, describe, wants,
};
use es_core::projection::{DeadLetter, HandlerError, ProjectionOptions};
use es_core::store::FeedFilter;
use es_core::{DomainEvent, Position, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::PgProjection;
use super::lease::{BeatError, Claimed, Lease};
use super::lock::Lock;
use super::read_model::{Bound, ModelError, Stage, caught_up};
use crate::PgEventStore;
use crate::dead_letters;
use crate::error::backend;
use crate::rows::{bind_half, position};
use es_core::store::partition_of;

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
    claim: Claim,
    standby_poll: Duration,
    lease: Duration,
    /// The dedicated connection holding the claim; `None` until acquired or after it failed.
    conn: Option<PgConnection>,
    /// The declared read model (or why it is invalid), and where it stood when this worker became active.
    model: Option<Result<Bound, String>>,
    stage: Option<Stage>,
}

/// What makes a worker the active one.
#[derive(Debug)]
enum Claim {
    /// The projection's advisory lock, held by the dedicated connection.
    Lock(Lock),
    /// One partition's lease, fencing every checkpoint move.
    Lease(Lease),
}

pub(crate) enum Failure {
    /// The event at this index failed (its error, whether transient).
    Handler(usize, String, bool),
    /// A batch handler failed without saying which event: the batch is applied again one event at a time.
    Batch,
    Fenced(Option<Position>),
    /// The claim is gone (a partition's lease was taken over or expired).
    Lost(String),
    /// The read model version this worker builds was replaced: it must stop.
    Retired(String),
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
        let declared = projection.read_model();
        let name = match &declared {
            Some(model) => model.worker_name(projection.name()),
            None => projection.name().to_owned(),
        };
        let model = declared.map(|model| Bound::new(store, projection.name(), model));
        Self {
            store: store.clone(),
            claim: Claim::Lock(Lock::new(store, &name)),
            projection,
            options,
            name,
            standby_poll: Duration::from_secs(1),
            lease: DEFAULT_LEASE,
            conn: None,
            model,
            stage: None,
        }
    }

    /// The worker of one partition (see [`PgPartitions`](super::PgPartitions)), named `name#partition`.
    pub(crate) fn partition(projection: P, options: ProjectionOptions, lease: Lease) -> Self {
        let name = format!("{}#{}", projection.name(), lease.partition);
        let model = projection.read_model().map(|_| {
            Err("declared read models (`PgProjection::read_model`) are not supported on partitioned \
                 projections yet; create the tables in the application"
                .to_owned())
        });
        Self {
            store: lease.shared.store.clone(),
            projection,
            options,
            name,
            model,
            claim: Claim::Lease(lease),
            standby_poll: Duration::from_secs(1),
            lease: DEFAULT_LEASE,
            conn: None,
            stage: None,
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

    /// Begins a batch's transaction; for a declared read model, first makes sure its version is still current
    /// (a retired version's worker handles nothing more).
    async fn begin<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, Failure> {
        let mut tx = Connection::begin(conn).await?;
        if let Some(Ok(model)) = &self.model
            && !model.still_current(&mut tx).await?
        {
            return Err(Failure::Retired(model.retired()));
        }
        Ok(tx)
    }

    /// Moves the checkpoint from `from` to `to` inside `tx`; `Fenced` when it was elsewhere, `Lost` when a
    /// partition's lease is gone.
    async fn move_checkpoint(
        &self,
        tx: &mut PgConnection,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), Failure> {
        if let Claim::Lease(lease) = &self.claim {
            return lease.move_checkpoint(tx, from, to).await;
        }

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
        let mut tx = self.begin(conn).await?;
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
        self.failure_after(failure, expected, operation, 1)
    }

    /// [`failure`](Self::failure) of a call that tried the failing event `attempts` times.
    fn failure_after(
        &mut self,
        failure: Failure,
        expected: Option<Position>,
        operation: &'static str,
        attempts: u32,
    ) -> ApplyError {
        match failure {
            Failure::Handler(index, error, transient) => ApplyError::Handler(BatchError {
                index,
                error,
                transient,
                kept_before: false,
                attempts,
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
            Failure::Retired(error) => ApplyError::Worker(WorkerError::Other {
                projection: self.name.clone(),
                error,
            }),
            Failure::Lost(error) => {
                self.conn = None;
                ApplyError::Worker(WorkerError::Lost {
                    projection: self.name.clone(),
                    error,
                })
            }
            Failure::Db(error) => ApplyError::Worker(self.lost(error, operation)),
        }
    }

    /// Moves the checkpoint to `to`, or (`None`) empties the read model and goes back to the start: for a
    /// partition, every partition goes back (see [`PgPartitions::rebuild`](super::PgPartitions::rebuild)).
    async fn reset_in_tx(
        &mut self,
        conn: &mut PgConnection,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), Failure> {
        let mut tx = self.begin(conn).await?;
        match to {
            None => {
                if let Some(Ok(model)) = &self.model {
                    model.truncate(&mut tx).await?;
                }
                self.projection
                    .reset(&mut tx)
                    .await
                    .map_err(|e| Failure::Handler(0, e.to_string(), false))?;
                match &mut self.claim {
                    Claim::Lock(_) => {
                        sqlx::query(&self.store.inner.sql.delete_checkpoint)
                            .bind(&self.name)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Claim::Lease(lease) => lease.rebuild(&mut tx).await?,
                }
            }
            Some(to) => self.move_checkpoint(&mut tx, from, to).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored checkpoint, read on the claim's connection.
    async fn load(&mut self) -> Result<Option<Position>, sqlx::Error> {
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        match &self.claim {
            Claim::Lock(_) => load_checkpoint(&self.store, conn, &self.name).await,
            Claim::Lease(lease) => lease.checkpoint(conn).await,
        }
    }

    /// Tries to become the active instance once.
    async fn try_claim(&mut self) -> Result<Acquired, WorkerError> {
        let failed = |error: sqlx::Error| WorkerError::Store(backend("acquire")(error));
        let standby = |holder| Acquired::Standby {
            holder,
            retry_in: self.standby_poll,
        };
        let claimed = match &mut self.claim {
            Claim::Lock(lock) => match lock.take(&self.store, self.lease).await.map_err(failed)? {
                Some(conn) => Claimed::Won(conn),
                None => Claimed::Busy(lock.holder(&self.store).await.map_err(failed)?),
            },
            Claim::Lease(lease) => lease
                .claim()
                .await
                .map_err(|e| beat_failed(&self.name, e))?,
        };
        match claimed {
            Claimed::Won(mut conn) => {
                self.stage = match &self.model {
                    None => None,
                    Some(Err(error)) => return Err(self.invalid(error.clone())),
                    Some(Ok(model)) => match model.set_up(&mut conn).await {
                        Ok(stage) => Some(stage),
                        Err(ModelError::Db(error)) => return Err(failed(error)),
                        Err(ModelError::Invalid(error)) => return Err(self.invalid(error)),
                    },
                };
                tracing::info!(projection = %self.name, stage = ?self.stage, "became the active instance");
                self.conn = Some(conn);
                Ok(Acquired::Active)
            }
            Claimed::Busy(holder) => Ok(standby(holder)),
        }
    }

    fn invalid(&self, error: String) -> WorkerError {
        WorkerError::Other {
            projection: self.name.clone(),
            error,
        }
    }

    /// A building read model that has caught up with the head becomes the live one.
    async fn promote_if_caught_up(&mut self, to: Position) -> Result<(), WorkerError> {
        let (Some(Stage::Building), Some(Ok(model))) = (self.stage, &self.model) else {
            return Ok(());
        };
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let done = match caught_up(&self.store, to).await {
            Ok(false) => return Ok(()),
            Ok(true) => model.promote(conn).await,
            Err(error) => Err(ModelError::Db(error)),
        };
        match done {
            Ok(()) => {
                self.stage = Some(Stage::Live);
                Ok(())
            }
            Err(ModelError::Db(error)) => Err(self.lost(error, "promote")),
            Err(ModelError::Invalid(error)) => Err(self.invalid(error)),
        }
    }

    /// For a partition: gives its lease up when this process holds more than its share, so a newer worker can
    /// claim it.
    async fn hand_over_if_over_share(&mut self) -> Result<(), WorkerError> {
        let Claim::Lease(lease) = &mut self.claim else {
            return Ok(());
        };
        if !lease
            .should_hand_over()
            .await
            .map_err(|e| beat_failed(&self.name, e))?
        {
            return Ok(());
        }
        let released = lease.release().await;
        self.conn = None;
        released.map_err(|e| WorkerError::Store(backend("release")(e)))?;
        Err(WorkerError::Lost {
            projection: self.name.clone(),
            error: "handed over to balance the partitions between the workers".to_owned(),
        })
    }
}

/// A failed membership beat, as the runner sees it: retried (the database is down) or a configuration error.
fn beat_failed(projection: &str, error: BeatError) -> WorkerError {
    match error {
        BeatError::Db(error) => WorkerError::Store(backend("acquire")(error)),
        BeatError::Partitions(error) => WorkerError::Other {
            projection: projection.to_owned(),
            error,
        },
    }
}

/// Opens a dedicated connection with the store's settings, within its connect timeout.
pub(crate) async fn connect(store: &PgEventStore) -> Result<PgConnection, sqlx::Error> {
    let options = store.inner.pool.connect_options();
    let connect = PgConnection::connect_with(&options);
    tokio::time::timeout(store.inner.connect_timeout, connect)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
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

/// How long the server keeps a silent holder's lock by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

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
        if let Claim::Lease(lease) = &mut self.claim {
            lease.forget();
        }
        self.try_claim().await
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(self.lease / 3)
    }

    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        self.hand_over_if_over_share().await?;
        let mut conn = self.take_conn()?;
        let result = match &self.claim {
            Claim::Lock(_) => sqlx::query("SELECT 1")
                .execute(&mut conn)
                .await
                .map(|_| ())
                .map_err(Failure::Db),
            Claim::Lease(lease) => lease.renew(&mut conn).await,
        };
        self.conn = Some(conn);
        result.map_err(|failure| match self.failure(failure, None, "heartbeat") {
            ApplyError::Worker(error) => error,
            ApplyError::Handler(error) => WorkerError::Other {
                projection: self.name.clone(),
                error: error.error,
            },
        })
    }

    async fn release(&mut self) {
        if let Claim::Lease(lease) = &mut self.claim
            && let Err(error) = lease.release().await
        {
            tracing::warn!(projection = %self.name, %error, "could not release the partition; it expires by itself");
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }

    fn feed_filter(&self) -> FeedFilter {
        let filter = FeedFilter::of::<P::Event>(self.projection.categories());
        match &self.claim {
            Claim::Lock(_) => filter,
            Claim::Lease(lease) => filter.partition(lease.partition, lease.shared.partitions),
        }
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        wants::<P::Event>(self.projection.categories(), stream, event_type)
            && match &self.claim {
                Claim::Lock(_) => true,
                Claim::Lease(lease) => {
                    partition_of(stream, lease.shared.partitions) == lease.partition
                }
            }
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        match self.load().await {
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
        self.hand_over_if_over_share().await?;
        let mut conn = self.take_conn().map_err(ApplyError::Worker)?;
        let (result, attempts) = match self.apply_in_tx(&mut conn, events, from, to, false).await {
            // Which event failed? Apply them one by one (a transient failure may not come back at all): the failing
            // one is then tried a second time.
            Err(Failure::Batch) => (self.apply_in_tx(&mut conn, events, from, to, true).await, 2),
            other => (other, 1),
        };
        self.conn = Some(conn);
        result.map_err(|failure| self.failure_after(failure, from, "apply", attempts))?;
        Ok(self.promote_if_caught_up(to).await?)
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let mut conn = self.take_conn()?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = self.begin(&mut conn).await?;
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
        let result = self.reset_in_tx(&mut conn, from, to).await;
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

    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError> {
        let (store, name) = (self.store.clone(), self.name.clone());
        let removed = sqlx::query(&store.inner.sql.remove_dead_letter)
            .bind(&name)
            .bind(letter.event_id.as_uuid())
            .execute(self.conn()?)
            .await;
        removed
            .map(drop)
            .map_err(|error| self.lost(error, "discard"))
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let mut conn = self.take_conn().map_err(ApplyError::Worker)?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = self.begin(&mut conn).await?;
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

    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        let store = self.store.clone();
        let parked = dead_letters::park(&store.inner.sql, self.conn()?, &letter).await;
        parked.map_err(|error| self.lost(error, "replace_dead_letter"))
    }
}
