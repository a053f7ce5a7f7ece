//! The transactional worker: each batch's read-model writes and its checkpoint commit in one transaction, on a
//! dedicated connection that holds the claim (an advisory lock, or a partition's lease).

mod backend;
mod session;

use std::time::Duration;

use es_core::Position;
use es_core::backend::TransactionalWorker;
use es_core::projection::ProjectionOptions;

use super::PgProjection;
use super::lease::Lease;
use super::lock::Lock;
use super::read_model::Bound;
use crate::PgEventStore;
use backend::PgBackend;
pub use session::DEFAULT_LEASE;
pub(crate) use session::connect;

/// Runs a [`PgProjection`] with exactly-once effect on one process at a time.
///
/// It holds a session advisory lock on a dedicated connection and runs every transaction of the projection on that
/// same connection, so losing the connection releases both and nothing can commit without the lock. Other
/// processes running the same projection wait as standbys (their status names the holder) and take over within
/// `standby_poll` (1 s by default) of the active one's connection closing.
///
/// It is [`TransactionalWorker`] (the exactly-once worker every transactional store shares) on PostgreSQL: the
/// claim, the transaction and the statements are this crate's.
///
/// **Failures.** When its connection fails (a server restart, a terminated backend, a network drop), the worker
/// reports [`WorkerError::Lost`](es_core::backend::WorkerError::Lost): the runner opens a new connection, takes the lock again (or goes standby when
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
    inner: TransactionalWorker<PgBackend<P>>,
}

es_core::transactional_worker!(PgProjectionWorker<P: PgProjection>, inner);

/// What makes a worker the active one.
#[derive(Debug)]
pub(super) enum Claim {
    /// The projection's advisory lock, held by the dedicated connection.
    Lock(Lock),
    /// One partition's lease, fencing every checkpoint move.
    Lease(Lease),
}

pub(crate) enum Failure {
    Fenced(Option<Position>),
    /// The claim is gone (a partition's lease was taken over or expired).
    Lost(String),
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
        let claim = Claim::Lock(Lock::new(store, &name));
        Self::with(store.clone(), projection, options, name, claim, model)
    }

    fn with(
        store: PgEventStore,
        projection: P,
        options: ProjectionOptions,
        name: String,
        claim: Claim,
        model: Option<Result<Bound, String>>,
    ) -> Self {
        let backend = PgBackend {
            store,
            projection,
            name,
            claim,
            standby_poll: Duration::from_secs(1),
            lease: DEFAULT_LEASE,
            conn: None,
            open: false,
            model,
            stage: None,
        };
        Self {
            inner: TransactionalWorker::new(backend, options),
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
        let store = lease.shared.store.clone();
        Self::with(store, projection, options, name, Claim::Lease(lease), model)
    }

    /// How often a standby tries to take over (default 1 s).
    pub fn standby_poll(mut self, interval: Duration) -> Self {
        self.inner.backend_mut().standby_poll = interval;
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
        self.inner.backend_mut().lease = lease.max(Duration::from_secs(1));
        self
    }
}
