//! The projection runner: catch-up in batches, then live; checkpoints; retries; control while running.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::control::{ControlOptions, ControlStore, Controlled, run_agent};
use crate::projection::CheckpointStore;
use crate::projection::checkpointed::CheckpointedWorker;
use crate::projection::feed::{Feed, FeedItem};
use crate::projection::sampler::{sample_metrics, status_of};
use crate::projection::worker::{Acquired, ProjectionWorker, WorkerError};
use crate::projection::worker::{ApplyError, BatchError};
use crate::projection::{
    DeadLetter, DeadLetterStore, FailurePolicy, Projection, ProjectionOptions, ProjectionState,
    ProjectionStatus,
};
use crate::store::error::CorruptEvent;
use crate::store::{EventId, EventStore, Position, RecordedEvent, StoreError, Version};
use crate::store::{FeedBatch, FeedFilter, FeedStream};
use crate::telemetry;

/// A runner operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// No projection of that name runs here.
    #[error("no projection named `{0}` in this runner")]
    UnknownProjection(String),
    /// The projection has stopped or failed, so it will not get there.
    #[error("projection `{name}` is not running: {state:?}")]
    NotRunning {
        /// The projection.
        name: String,
        /// Its state.
        state: ProjectionState,
    },
    /// The projection is not active in this process (another process runs it, or this one is reconnecting), so it
    /// cannot carry out a control request. Send it to the active instance, or retry.
    #[error(
        "projection `{name}` is not active in this process ({state:?}); ask the instance that runs it"
    )]
    NotActive {
        /// The projection.
        name: String,
        /// Its state here.
        state: ProjectionState,
    },
    /// The projection did not reach the position in time.
    #[error(
        "projection `{name}` did not reach position {position} within {timeout:?} (it is at {checkpoint:?})"
    )]
    Timeout {
        /// The projection.
        name: String,
        /// The position waited for.
        position: Position,
        /// How long.
        timeout: Duration,
        /// Where it got to.
        checkpoint: Option<Position>,
    },
    /// The projection has no dead letter for that event.
    #[error("projection `{name}` has no dead letter for event {event_id}")]
    NoDeadLetter {
        /// The projection.
        name: String,
        /// The event asked for.
        event_id: EventId,
    },
    /// The dead letter waits behind an earlier one of its stream ([`FailurePolicy::ParkStream`]): redrive that one
    /// first, so the stream's events are handled in order.
    #[error(
        "projection `{name}`: the dead letter of event {event_id} waits behind event {earlier} of stream `{stream}`; redrive that one first"
    )]
    ParkedBehind {
        /// The projection.
        name: String,
        /// The event asked for.
        event_id: EventId,
        /// Its stream.
        stream: String,
        /// The earlier parked event of the stream.
        earlier: EventId,
    },
    /// The worker failed the operation.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Collects projections and starts them.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use es_core::{
///     DomainEvent,
///     EventStore,
///     ExpectedVersion,
///     NewEvent,
///     Projection,
///     ProjectionRunner,
///     RecordedEvent,
///     StreamId,
/// };
/// use es_core::projection::{HandlerError, ProjectionOptions};
/// use es_memory::InMemoryEventStore;
///
/// #[derive(DomainEvent)]
/// enum AccountEvent { Deposited { amount: u64 } }
///
/// #[derive(Clone, Default)]
/// struct Balances(Arc<Mutex<HashMap<String, u64>>>);
///
/// #[async_trait::async_trait]
/// impl Projection for Balances {
///     type Event = AccountEvent;
///     fn name(&self) -> &str { "balances" }
///     async fn handle(&self, event: AccountEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
///         let AccountEvent::Deposited { amount } = event;
///         *self.0.lock().unwrap().entry(record.stream_id.to_string()).or_default() += amount;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let balances = Balances::default();
/// let running = ProjectionRunner::new(store.clone())
///     .with_projection(balances.clone(), store.clone(), ProjectionOptions::default())
///     .start();
///
/// let stream = StreamId::new("account-1")?;
/// let deposit = NewEvent::new("Deposited", 1, serde_json::json!({ "amount": 5 }));
/// let written = store.append(&stream, ExpectedVersion::Any, vec![deposit]).await?;
///
/// // Read your own write: wait until the projection has passed the append's position.
/// running.wait_for("balances", written.last_position, Duration::from_secs(5)).await?;
/// assert_eq!(balances.0.lock().unwrap()["account-1"], 5);
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ProjectionRunner<S> {
    store: S,
    workers: Vec<Box<dyn ProjectionWorker>>,
    metrics_every: Option<Duration>,
    control: Option<(Arc<dyn ControlStore>, ControlOptions)>,
}

impl<S> std::fmt::Debug for ProjectionRunner<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.workers.iter().map(|w| w.name().to_owned()).collect();
        f.debug_struct("ProjectionRunner")
            .field("projections", &names)
            .finish()
    }
}

impl<S: EventStore + Clone + 'static> ProjectionRunner<S> {
    /// A runner reading events from `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            workers: Vec::new(),
            metrics_every: Some(DEFAULT_METRICS_INTERVAL),
            control: None,
        }
    }

    /// Takes part in the [control plane](crate::control): reports every projection to `store` and carries out the
    /// control requests written there for the projections this process runs (the others are left to their
    /// active instance). Pauses marked in `store` hold here too.
    pub fn control_plane(
        mut self,
        store: impl ControlStore + 'static,
        options: ControlOptions,
    ) -> Self {
        self.control = Some((Arc::new(store), options));
        self
    }

    /// How often the runner publishes each projection's lag, checkpoint, state and dead letters as gauges
    /// ([`telemetry`](crate::telemetry); default every 5 s, `None`: never). Each sample reads the head and counts
    /// the events after each checkpoint, as [`RunningProjections::status`] does.
    pub fn metrics_every(mut self, interval: Option<Duration>) -> Self {
        self.metrics_every = interval;
        self
    }

    /// Adds a projection run by `worker`.
    pub fn with(mut self, worker: impl ProjectionWorker) -> Self {
        self.workers.push(Box::new(worker));
        self
    }

    /// Adds several workers: the partitions of one projection (`es_postgres::PgPartitions::workers`).
    pub fn with_all<W: ProjectionWorker>(mut self, workers: impl IntoIterator<Item = W>) -> Self {
        for worker in workers {
            self = self.with(worker);
        }
        self
    }

    /// Adds `projection` with a [`CheckpointedWorker`] keeping its checkpoint and dead letters in `checkpoints`.
    pub fn with_projection<P, C>(
        self,
        projection: P,
        checkpoints: C,
        options: ProjectionOptions,
    ) -> Self
    where
        P: Projection,
        C: CheckpointStore + DeadLetterStore + 'static,
    {
        self.with(CheckpointedWorker::new(projection, checkpoints, options))
    }

    /// Starts every projection on its own task. Must be called inside a Tokio runtime. With more than one
    /// projection, one feed reads the global stream for all of them (each still catches up on its own, filtered
    /// on the server, until it reaches the feed; see the [module](crate::projection) overview).
    pub fn start(self) -> RunningProjections {
        let (shutdown, _) = watch::channel(false);
        let store: Arc<dyn EventStore> = Arc::new(self.store);
        let feed = (self.workers.len() > 1).then(|| {
            let filters: Vec<FeedFilter> = self.workers.iter().map(|w| w.feed_filter()).collect();
            Feed::start(
                Arc::clone(&store),
                FeedFilter::union(&filters),
                shutdown.subscribe(),
            )
        });
        let mut projections = HashMap::new();
        let pauses = self.control.as_ref().map(|(store, _)| Arc::clone(store));
        for worker in self.workers {
            let name = worker.name().to_owned();
            let (status, status_rx) = watch::channel(TaskStatus::default());
            let (control, control_rx) = mpsc::channel(8);
            let task = Task {
                store: Arc::clone(&store),
                worker,
                status,
                control: control_rx,
                shutdown: shutdown.subscribe(),
                parked: HashSet::new(),
                feed: feed.clone(),
                paused: false,
                pauses: pauses.clone(),
            };
            let join = tokio::spawn(task.run());
            projections.insert(
                name,
                Handle {
                    control,
                    status: status_rx,
                    join,
                },
            );
        }
        if let Some(interval) = self.metrics_every {
            let watched = projections
                .iter()
                .map(|(name, handle)| (name.clone(), handle.status.clone()))
                .collect();
            tokio::spawn(sample_metrics(
                Arc::clone(&store),
                watched,
                interval,
                shutdown.subscribe(),
            ));
        }
        let agent = self.control.map(|(control, options)| {
            let controlled = projections
                .iter()
                .map(|(name, handle)| Controlled {
                    name: name.clone(),
                    control: handle.control.clone(),
                    status: handle.status.clone(),
                })
                .collect();
            tokio::spawn(run_agent(
                control,
                options,
                controlled,
                shutdown.subscribe(),
            ))
        });
        RunningProjections {
            projections,
            shutdown,
            store,
            agent,
        }
    }
}

/// How often a runner publishes its projections' gauges unless told otherwise.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(5);

/// How long [`RunningProjections::shutdown`] lets a batch in flight finish before it abandons it.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The wait before a projection that lost its connection or claim tries to get them back.
const RECOVERY_PAUSE: Duration = Duration::from_millis(500);

/// What a projection task publishes.
#[derive(Clone, Debug)]
pub(crate) struct TaskStatus {
    pub(crate) state: ProjectionState,
    pub(crate) checkpoint: Option<Position>,
    pub(crate) last_event_at: Option<Instant>,
    /// Kept by the task (read at start, then counted), so a status call never waits for a busy task.
    pub(crate) dead_letters: usize,
}

impl Default for TaskStatus {
    fn default() -> Self {
        Self {
            state: ProjectionState::Starting,
            checkpoint: None,
            last_event_at: None,
            dead_letters: 0,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, RunnerError>>;

pub(crate) enum Control {
    Rebuild(Reply<()>),
    ResetTo(Position, Reply<()>),
    DeadLetters(Reply<Vec<DeadLetter>>),
    Redrive(Reply<(usize, usize)>),
    RedriveOne(EventId, Reply<bool>),
    Discard(EventId, Reply<()>),
    Pause(Reply<()>),
    Resume(Reply<()>),
}

impl Control {
    /// Answers with `error` instead of carrying the request out.
    fn refuse(self, error: RunnerError) {
        match self {
            Self::Rebuild(reply)
            | Self::ResetTo(_, reply)
            | Self::Discard(_, reply)
            | Self::Pause(reply)
            | Self::Resume(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::DeadLetters(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::Redrive(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::RedriveOne(_, reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

struct Handle {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<TaskStatus>,
    join: JoinHandle<()>,
}

/// The running projections: status, read-your-writes, rebuild, dead letters, shutdown.
///
/// Control requests ([`rebuild`](Self::rebuild), [`reset_to`](Self::reset_to), [`dead_letters`](Self::dead_letters),
/// [`redrive`](Self::redrive)) are carried out by the projection's task between batches (or during a retry's
/// wait) and always answer: done, or [`RunnerError::NotActive`] at once when this process is a standby or is
/// reconnecting, never a request queued for later.
pub struct RunningProjections {
    projections: HashMap<String, Handle>,
    shutdown: watch::Sender<bool>,
    store: Arc<dyn EventStore>,
    /// The control-plane agent, whose last report says the projections stopped.
    agent: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningProjections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.projections.keys().collect();
        f.debug_struct("RunningProjections")
            .field("projections", &names)
            .finish()
    }
}

impl RunningProjections {
    fn handle(&self, name: &str) -> Result<&Handle, RunnerError> {
        self.projections
            .get(name)
            .ok_or_else(|| RunnerError::UnknownProjection(name.to_owned()))
    }

    /// Waits until projection `name` has processed `position` (an append's `last_position`), so a read of its
    /// read model sees that write.
    ///
    /// # Errors
    /// [`RunnerError::Timeout`], [`RunnerError::NotRunning`] when it stopped or failed,
    /// [`RunnerError::UnknownProjection`].
    pub async fn wait_for(
        &self,
        name: &str,
        position: Position,
        timeout: Duration,
    ) -> Result<(), RunnerError> {
        let mut status = self.handle(name)?.status.clone();
        let reached = tokio::time::timeout(timeout, async {
            loop {
                {
                    let now = status.borrow_and_update();
                    if now.checkpoint.is_some_and(|c| c >= position) {
                        return Ok(());
                    }
                    if matches!(
                        now.state,
                        ProjectionState::Stopped | ProjectionState::Failed { .. }
                    ) {
                        return Err(RunnerError::NotRunning {
                            name: name.to_owned(),
                            state: now.state.clone(),
                        });
                    }
                }
                if status.changed().await.is_err() {
                    let state = status.borrow().state.clone();
                    return Err(RunnerError::NotRunning {
                        name: name.to_owned(),
                        state,
                    });
                }
            }
        })
        .await;
        reached.unwrap_or_else(|_| {
            Err(RunnerError::Timeout {
                name: name.to_owned(),
                position,
                timeout,
                checkpoint: status.borrow().checkpoint,
            })
        })
    }

    /// Projection `name`'s state, without asking the store (so it answers while the database is down).
    ///
    /// # Errors
    /// [`RunnerError::UnknownProjection`].
    pub fn state(&self, name: &str) -> Result<ProjectionState, RunnerError> {
        Ok(self.handle(name)?.status.borrow().state.clone())
    }

    /// Projection `name`'s progress and health. Its lag counts the events after its checkpoint and those the
    /// store holds back behind an open transaction, which [`ProjectionStatus::held_back`] names.
    ///
    /// # Errors
    /// [`RunnerError::UnknownProjection`], [`RunnerError::Store`] when the head cannot be read.
    pub async fn status(&self, name: &str) -> Result<ProjectionStatus, RunnerError> {
        let handle = self.handle(name)?;
        let now = handle.status.borrow().clone();
        Ok(status_of(self.store.as_ref(), name, now).await?)
    }

    async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(Reply<T>) -> Control,
    ) -> Result<T, RunnerError> {
        let handle = self.handle(name)?;
        ask(name, &handle.control, &handle.status, make).await
    }

    /// Empties projection `name`'s read model and checkpoint, and replays every event into it.
    ///
    /// # Errors
    /// [`RunnerError::Worker`] when the reset fails; [`RunnerError::NotActive`] on a standby;
    /// [`RunnerError::NotRunning`].
    pub async fn rebuild(&self, name: &str) -> Result<(), RunnerError> {
        self.ask(name, Control::Rebuild).await
    }

    /// Moves projection `name`'s checkpoint to `position` (events after it are handled next).
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn reset_to(&self, name: &str, position: Position) -> Result<(), RunnerError> {
        self.ask(name, |reply| Control::ResetTo(position, reply))
            .await
    }

    /// Projection `name`'s dead letters.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, RunnerError> {
        self.ask(name, Control::DeadLetters).await
    }

    /// Handles projection `name`'s dead letters again; returns how many now succeeded and how many still fail.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn redrive(&self, name: &str) -> Result<(usize, usize), RunnerError> {
        self.ask(name, Control::Redrive).await
    }

    /// Handles the dead letter of event `event_id` again: `true` when it succeeded (the letter is gone), `false` when
    /// it failed again (the letter stays, with the new error).
    ///
    /// # Errors
    /// [`RunnerError::NoDeadLetter`]; [`RunnerError::ParkedBehind`] under
    /// [`FailurePolicy::ParkStream`] when an earlier letter of its stream is still parked; as
    /// [`RunningProjections::rebuild`].
    pub async fn redrive_one(&self, name: &str, event_id: EventId) -> Result<bool, RunnerError> {
        self.ask(name, |reply| Control::RedriveOne(event_id, reply))
            .await
    }

    /// Drops the dead letter of event `event_id` without handling the event.
    ///
    /// # Errors
    /// [`RunnerError::NoDeadLetter`]; as [`RunningProjections::rebuild`].
    pub async fn discard(&self, name: &str, event_id: EventId) -> Result<(), RunnerError> {
        self.ask(name, |reply| Control::Discard(event_id, reply))
            .await
    }

    /// Stops projection `name` reading events (it keeps its claim and answers control requests) until
    /// [`resume`](Self::resume). Pausing through the store ([`ControlCommand::Pause`](crate::control::ControlCommand))
    /// also survives a takeover; this one lasts while this process runs the projection.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn pause(&self, name: &str) -> Result<(), RunnerError> {
        self.ask(name, Control::Pause).await
    }

    /// Lets a paused projection read on.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn resume(&self, name: &str) -> Result<(), RunnerError> {
        self.ask(name, Control::Resume).await
    }

    /// Stops every projection after the batch in flight, and waits for them at most
    /// [`DEFAULT_SHUTDOWN_GRACE`]; see [`shutdown_within`](Self::shutdown_within).
    pub async fn shutdown(self) {
        self.shutdown_within(DEFAULT_SHUTDOWN_GRACE).await;
    }

    /// Stops every projection after the batch in flight, waiting at most `grace` for them (a batch blocked on a
    /// locked table or an unreachable server may never finish). A batch still running then is abandoned: a
    /// transactional worker's transaction rolls back, an at-least-once worker handles the batch again next time.
    pub async fn shutdown_within(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in self.projections {
            match tokio::time::timeout_at(deadline, &mut handle.join).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(projection = %name, %error, "projection task panicked");
                }
                Err(_) => {
                    tracing::warn!(projection = %name, ?grace, "projection did not stop in time; abandoning its batch");
                    handle.join.abort();
                }
            }
        }
        if let Some(mut agent) = self.agent
            && tokio::time::timeout_at(deadline, &mut agent).await.is_err()
        {
            agent.abort();
        }
    }
}

/// Sends a control request to a projection's task and waits for its answer.
pub(crate) async fn ask<T>(
    name: &str,
    control: &mpsc::Sender<Control>,
    status: &watch::Receiver<TaskStatus>,
    make: impl FnOnce(Reply<T>) -> Control,
) -> Result<T, RunnerError> {
    let (reply, answer) = oneshot::channel();
    let not_running = || RunnerError::NotRunning {
        name: name.to_owned(),
        state: status.borrow().state.clone(),
    };
    control.send(make(reply)).await.map_err(|_| not_running())?;
    answer.await.map_err(|_| not_running())?
}

/// How retrying a failing event ended.
enum Retried {
    /// It succeeded.
    Done,
    /// Its attempts ran out, with the last error and the number of attempts made.
    GaveUp(String, u32),
    /// A control request moved the checkpoint meanwhile, or the runner shuts down.
    Interrupted(Flow),
}

/// What a projection task does after a step.
enum Flow {
    /// Read on.
    Next,
    /// The checkpoint moved (a rebuild or reset): subscribe again from it.
    Resubscribe,
    /// Leave the loop.
    Exit(Exit),
}

/// Why a projection task left its loop.
enum Exit {
    Shutdown,
    Failed(String),
}

/// Why an active projection stopped being active.
enum Ended {
    Exit(Exit),
    /// It lost its connection or claim: get them back and carry on.
    Lost(String),
}

/// How a wait ended.
enum Waited {
    Elapsed,
    Flow(Flow),
}

struct Task {
    store: Arc<dyn EventStore>,
    worker: Box<dyn ProjectionWorker>,
    status: watch::Sender<TaskStatus>,
    control: mpsc::Receiver<Control>,
    shutdown: watch::Receiver<bool>,
    /// Under [`FailurePolicy::ParkStream`]: the streams with dead letters, whose later events are parked behind them.
    parked: HashSet<String>,
    /// The runner's shared feed, when it runs several projections.
    feed: Option<Arc<Feed>>,
    /// Paused by an operator: reads nothing until resumed.
    paused: bool,
    /// Where pauses are kept across processes, when the runner has a control plane.
    pauses: Option<Arc<dyn ControlStore>>,
}

/// Where a task reads from: its own filtered subscription (catching up), or the runner's feed (caught up).
enum Source {
    Own(FeedStream),
    Shared(tokio::sync::broadcast::Receiver<Arc<FeedItem>>),
}

/// What a task's source gave.
enum Pulled {
    Batch(FeedBatch),
    Shared(Arc<FeedItem>),
    Corrupt(Box<CorruptEvent>),
    Failed(StoreError),
    /// The source ended or the task fell behind the feed's buffer: read on its own again.
    Ended,
}

impl Source {
    fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    async fn next(&mut self) -> Pulled {
        match self {
            Self::Own(pages) => match pages.next().await {
                Some(Ok(batch)) => Pulled::Batch(batch),
                Some(Err(StoreError::Corrupt(corrupt))) => Pulled::Corrupt(corrupt),
                Some(Err(error)) => Pulled::Failed(error),
                None => Pulled::Ended,
            },
            Self::Shared(pages) => match pages.recv().await {
                Ok(item) => Pulled::Shared(item),
                Err(error) => {
                    tracing::debug!(%error, "left the shared feed; reading on its own");
                    Pulled::Ended
                }
            },
        }
    }
}

/// What woke a task up.
enum Woke {
    Control(Control),
    Heartbeat,
    FeedMoved,
    Pulled(Pulled),
}

/// Waits until the feed hands out another page (forever without a feed).
async fn moved(progress: &mut Option<watch::Receiver<Position>>) {
    if let Some(progress) = progress
        && progress.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

impl Task {
    async fn run(mut self) {
        let name = self.worker.name().to_owned();
        let exit = self.lifecycle().await;
        self.worker.release().await;
        let state = match exit {
            Exit::Shutdown => ProjectionState::Stopped,
            Exit::Failed(error) => {
                tracing::error!(projection = %name, %error, "projection halted");
                ProjectionState::Failed { error }
            }
        };
        self.set_state(state);
    }

    fn set_state(&self, state: ProjectionState) {
        self.status.send_if_modified(|s| {
            let changed = s.state != state;
            s.state = state;
            changed
        });
    }

    /// Running, or paused.
    fn active_state(&self) -> ProjectionState {
        match self.paused {
            true => ProjectionState::Paused,
            false => ProjectionState::Running,
        }
    }

    fn not_active(&self) -> RunnerError {
        RunnerError::NotActive {
            name: self.worker.name().to_owned(),
            state: self.status.borrow().state.clone(),
        }
    }

    /// Becomes active, runs until the claim is lost, and again; until shutdown or failure.
    async fn lifecycle(&mut self) -> Exit {
        loop {
            if let Some(exit) = self.become_active().await {
                return exit;
            }
            match self.run_active().await {
                Ended::Exit(exit) => return exit,
                Ended::Lost(error) => {
                    tracing::warn!(projection = self.worker.name(), %error, "lost the active instance; getting it back");
                    self.set_state(ProjectionState::Lost { error });
                    if self.wait_inactive(RECOVERY_PAUSE).await {
                        return Exit::Shutdown;
                    }
                }
            }
        }
    }

    /// Asks the worker to become active until it is (`None`), refusing control requests meanwhile; `Some` on
    /// shutdown.
    async fn become_active(&mut self) -> Option<Exit> {
        loop {
            let attempt = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return Some(Exit::Shutdown),
                attempt = self.worker.acquire() => attempt,
            };
            let wait = match attempt {
                Ok(Acquired::Active) => return None,
                Ok(Acquired::Standby { holder, retry_in }) => {
                    self.set_state(ProjectionState::Standby { holder });
                    retry_in
                }
                Err(error) => {
                    tracing::warn!(projection = self.worker.name(), %error, "cannot become the active instance; retrying");
                    self.set_state(ProjectionState::Lost {
                        error: error.to_string(),
                    });
                    RECOVERY_PAUSE
                }
            };
            if self.wait_inactive(wait).await {
                return Some(Exit::Shutdown);
            }
        }
    }

    /// Sleeps while not active, answering control requests with [`RunnerError::NotActive`]; true on shutdown.
    async fn wait_inactive(&mut self, duration: Duration) -> bool {
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        loop {
            let control = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return true,
                () = &mut sleep => return false,
                Some(control) = self.control.recv() => control,
            };
            control.refuse(self.not_active());
        }
    }

    /// Runs the projection from its stored checkpoint while this instance is the active one.
    async fn run_active(&mut self) -> Ended {
        let mut position = match self.worker.checkpoint().await {
            Ok(position) => position,
            Err(error) => return self.ended(error),
        };
        let dead_letters = match self.worker.dead_letters().await {
            Ok(letters) => {
                self.park_streams_of(&letters);
                letters.len()
            }
            Err(error) => return self.ended(error),
        };
        if let Some(pauses) = &self.pauses {
            match pauses.paused().await {
                Ok(paused) => self.paused = paused.iter().any(|p| p == self.worker.name()),
                Err(error) => return self.ended(error.into()),
            }
        }
        tracing::info!(projection = self.worker.name(), checkpoint = ?position, paused = self.paused, "running");
        let state = self.active_state();
        self.status.send_modify(|s| {
            s.state = state;
            s.checkpoint = position;
            s.dead_letters = dead_letters;
        });
        match self.follow(&mut position).await {
            Ok(exit) => Ended::Exit(exit),
            Err(error) => self.ended(error),
        }
    }

    /// What a worker error ends: a storage failure or a lost claim is recovered from (from the stored checkpoint,
    /// which may have moved if the failure hid a commit); being fenced off by another instance is not.
    fn ended(&self, error: WorkerError) -> Ended {
        match error {
            WorkerError::Store(_) | WorkerError::Lost { .. } | WorkerError::NotActive { .. } => {
                Ended::Lost(error.to_string())
            }
            other => Ended::Exit(Exit::Failed(other.to_string())),
        }
    }

    /// Reads after `position` (its own filtered subscription, then the runner's feed once caught up) and processes
    /// batches until shutdown, failure, or a control message that moves the checkpoint (then reads again from it).
    async fn follow(&mut self, position: &mut Option<Position>) -> Result<Exit, WorkerError> {
        let beat = self.worker.heartbeat_interval();
        let mut heartbeat = heartbeats(beat);
        let mut progress = self.feed.as_ref().map(|feed| feed.progress());
        'subscribe: loop {
            let mut source = self.source(*position, None);
            loop {
                let woke = tokio::select! {
                    biased;
                    _ = self.shutdown.wait_for(|stop| *stop) => return Ok(Exit::Shutdown),
                    Some(control) = self.control.recv() => Woke::Control(control),
                    _ = heartbeat.tick(), if beat.is_some() => Woke::Heartbeat,
                    () = moved(&mut progress), if source.is_own() && !self.paused => Woke::FeedMoved,
                    pulled = source.next(), if !self.paused => Woke::Pulled(pulled),
                };
                // Whether the worker did something, which shows it is alive as a heartbeat does.
                let worked = matches!(woke, Woke::Pulled(_));
                let flow = match woke {
                    Woke::Control(control) => match self.control(control, position).await {
                        true => Flow::Resubscribe,
                        false => Flow::Next,
                    },
                    Woke::Heartbeat => {
                        self.worker.heartbeat().await?;
                        Flow::Next
                    }
                    Woke::FeedMoved => Flow::Next,
                    Woke::Pulled(Pulled::Batch(batch)) => {
                        self.process_through(batch.events, batch.through, position)
                            .await?
                    }
                    Woke::Pulled(Pulled::Shared(item)) => match &*item {
                        FeedItem::Batch(batch) if Some(batch.through) > *position => {
                            let after = position.unwrap_or(Position::START);
                            let events = batch
                                .events
                                .iter()
                                .filter(|e| e.position > after)
                                .cloned()
                                .collect();
                            self.process_through(events, batch.through, position)
                                .await?
                        }
                        FeedItem::Corrupt(corrupt) if Some(corrupt.position) > *position => {
                            self.corrupt(corrupt, position).await?
                        }
                        _ => Flow::Next,
                    },
                    Woke::Pulled(Pulled::Corrupt(corrupt)) => {
                        self.corrupt(&corrupt, position).await?
                    }
                    Woke::Pulled(Pulled::Failed(error)) => return Err(WorkerError::Store(error)),
                    Woke::Pulled(Pulled::Ended) => continue 'subscribe,
                };
                match flow {
                    Flow::Next => {}
                    Flow::Resubscribe => continue 'subscribe,
                    Flow::Exit(exit) => return Ok(exit),
                }
                if source.is_own() {
                    source = self.source(*position, Some(source));
                }
                if worked {
                    heartbeat.reset();
                }
            }
        }
    }

    /// The runner's feed when it has not gone past `position`, else `own` (or a new own subscription).
    fn source(&self, position: Option<Position>, own: Option<Source>) -> Source {
        if let Some(pages) = self.feed.as_ref().and_then(|feed| feed.join(position)) {
            return Source::Shared(pages);
        }
        own.unwrap_or_else(|| {
            let after = position.unwrap_or(Position::START);
            Source::Own(
                self.store
                    .subscribe_filtered(after, self.worker.feed_filter()),
            )
        })
    }

    /// Processes a page of the feed in batches of the projection's batch size; the last moves the checkpoint to
    /// `through` (past the events it read and did not want).
    async fn process_through(
        &mut self,
        mut events: Vec<RecordedEvent>,
        through: Position,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        events.retain(|e| self.worker.wants(e.stream_id.as_str(), &e.event_type));
        let size = self.worker.options().batch_size.max(1);
        loop {
            let rest = match events.len() > size {
                true => events.split_off(size),
                false => Vec::new(),
            };
            let to = match rest.is_empty() {
                true => through,
                false => events.last().map_or(through, |e| e.position),
            };
            let span = tracing::info_span!(
                "projection_batch",
                projection = self.worker.name(),
                from = %position.unwrap_or(Position::START),
                to = %to,
                events = events.len(),
            );
            for event in &events {
                telemetry::link_trace(&span, &event.metadata);
            }
            match self.process(events, to, position).instrument(span).await? {
                Flow::Next if !rest.is_empty() => events = rest,
                flow => return Ok(flow),
            }
        }
    }

    /// A stored event that does not read back: skipped when the projection would not have wanted it, else the
    /// failure policy's (halt naming it, or a dead letter and on).
    async fn corrupt(
        &mut self,
        corrupt: &CorruptEvent,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        if !self.worker.wants(&corrupt.stream, &corrupt.event_type) {
            return match self.worker.apply(&[], *position, corrupt.position).await {
                Ok(()) => {
                    self.advance(position, corrupt.position, false);
                    Ok(Flow::Next)
                }
                Err(ApplyError::Worker(error)) => Err(error),
                Err(ApplyError::Handler(failure)) => Err(WorkerError::Other {
                    projection: self.worker.name().to_owned(),
                    error: failure.error,
                }),
            };
        }
        let error = format!(
            "the stored event is corrupt (not retried): {}",
            corrupt.reason
        );
        let event = Failing {
            position: corrupt.position,
            event_id: corrupt.event_id,
            stream_id: corrupt.stream.clone(),
            version: corrupt.version,
            event_type: corrupt.event_type.clone(),
        };
        self.give_up(&event, error, 1, position).await
    }

    /// Applies one batch of wanted events and moves the checkpoint to `to`; on a failing event, retries it alone
    /// with backoff, then applies the failure policy. Events of parked streams ([`FailurePolicy::ParkStream`]) are
    /// parked in their place instead.
    async fn process(
        &mut self,
        wanted: Vec<RecordedEvent>,
        to: Position,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        if Some(to) <= *position {
            return Ok(Flow::Next);
        }
        let mut start = 0;
        loop {
            // The events up to the next one of a parked stream go together; that one is parked.
            let end = (start..wanted.len())
                .find(|&i| self.parked.contains(wanted[i].stream_id.as_str()))
                .unwrap_or(wanted.len());
            if end == start && start < wanted.len() {
                self.park_behind(&wanted[start], position).await?;
                start += 1;
                continue;
            }
            let upto = match end {
                end if end == wanted.len() => to,
                end => wanted[end - 1].position,
            };
            if start == end && *position == Some(upto) {
                return Ok(Flow::Next);
            }
            let started = Instant::now();
            let (failing, failure) = match self
                .worker
                .apply(&wanted[start..end], *position, upto)
                .await
            {
                Ok(()) => {
                    telemetry::record_batch(self.worker.name(), end - start, started.elapsed());
                    self.advance(position, upto, start < end);
                    if end == wanted.len() {
                        return Ok(Flow::Next);
                    }
                    start = end;
                    continue;
                }
                Err(ApplyError::Worker(error)) => return Err(error),
                Err(ApplyError::Handler(failure)) => {
                    self.first_failure(&wanted[..end], start, failure, started, position)
                        .await?
                }
            };
            let event = &wanted[failing];
            match self.retry(event, failure, position).await? {
                Retried::Done => {}
                Retried::GaveUp(error, attempts) => {
                    match self
                        .give_up(&Failing::of(event), error, attempts, position)
                        .await?
                    {
                        Flow::Next => {}
                        other => return Ok(other),
                    }
                }
                Retried::Interrupted(flow) => return Ok(flow),
            }
            start = failing + 1;
        }
    }

    /// Finds the first failing event of a batch `wanted[start..]` that failed with `failure`, and makes the events
    /// before it handled: an at-least-once worker kept them; a transactional one rolled them back, so they are applied
    /// again on their own. When one of those fails in turn (a poison event before an undecodable one, which a worker
    /// may find first), it is the first failing event, and the events before it are applied again: each round
    /// looks at fewer events, so this ends. Returns the index of the first failing event and its failure.
    async fn first_failure(
        &mut self,
        wanted: &[RecordedEvent],
        start: usize,
        mut failure: BatchError,
        started: Instant,
        position: &mut Option<Position>,
    ) -> Result<(usize, BatchError), WorkerError> {
        let Some(last) = wanted.len().checked_sub(1).filter(|&last| last >= start) else {
            return Err(WorkerError::Other {
                projection: self.worker.name().to_owned(),
                error: format!(
                    "a handler failed in a batch of no events: {}",
                    failure.error
                ),
            });
        };
        let mut failing = start + failure.index.min(last - start);
        loop {
            if failing == start {
                return Ok((failing, failure));
            }
            let before = wanted[failing - 1].position;
            if failure.kept_before {
                telemetry::record_batch(self.worker.name(), failing - start, started.elapsed());
                self.advance(position, before, true);
                return Ok((failing, failure));
            }
            match self
                .worker
                .apply(&wanted[start..failing], *position, before)
                .await
            {
                Ok(()) => {
                    telemetry::record_batch(self.worker.name(), failing - start, started.elapsed());
                    self.advance(position, before, true);
                    return Ok((failing, failure));
                }
                Err(ApplyError::Worker(error)) => return Err(error),
                Err(ApplyError::Handler(earlier)) => {
                    failing = start + earlier.index.min(failing - start - 1);
                    failure = earlier;
                }
            }
        }
    }

    /// Parks `event`, not handled, behind the earlier dead letter of its stream.
    async fn park_behind(
        &mut self,
        event: &RecordedEvent,
        position: &mut Option<Position>,
    ) -> Result<(), WorkerError> {
        let error = format!(
            "not handled: parked behind an earlier dead letter of stream {}",
            event.stream_id
        );
        self.park(&Failing::of(event), error, 0, position).await
    }

    /// Under [`FailurePolicy::ParkStream`], parks the streams of `letters`.
    fn park_streams_of(&mut self, letters: &[DeadLetter]) {
        self.parked = match self.worker.options().failure_policy {
            FailurePolicy::ParkStream => letters.iter().map(|l| l.stream_id.clone()).collect(),
            _ => HashSet::new(),
        };
    }

    /// Applies the failure policy to an event that failed for good: halt naming it, or park it and go on.
    async fn give_up(
        &mut self,
        event: &Failing,
        error: String,
        attempts: u32,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        let id = event.event_id;
        match self.worker.options().failure_policy {
            FailurePolicy::Stop => Ok(Flow::Exit(Exit::Failed(format!(
                "event {}@{} (position {}, id {id}, type `{}`) failed after {attempts} attempts: {error}",
                event.stream_id, event.version, event.position, event.event_type
            )))),
            FailurePolicy::DeadLetter => {
                tracing::warn!(projection = self.worker.name(), position = %event.position, %error, "parking event as a dead letter");
                self.park(event, error, attempts, position).await?;
                Ok(Flow::Next)
            }
            FailurePolicy::ParkStream => {
                tracing::warn!(projection = self.worker.name(), position = %event.position, stream = %event.stream_id, %error, "parking the stream from this event on");
                self.park(event, error, attempts, position).await?;
                self.parked.insert(event.stream_id.clone());
                Ok(Flow::Next)
            }
        }
    }

    /// Parks `event` as a dead letter and moves the checkpoint to it.
    async fn park(
        &mut self,
        event: &Failing,
        error: String,
        attempts: u32,
        position: &mut Option<Position>,
    ) -> Result<(), WorkerError> {
        let letter = DeadLetter {
            projection: self.worker.name().to_owned(),
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            error,
            attempts,
            failed_at: Utc::now(),
        };
        self.worker.park(letter, *position).await?;
        self.status.send_modify(|s| s.dead_letters += 1);
        self.advance(position, event.position, true);
        Ok(())
    }

    /// Retries `event` alone until it succeeds or its attempts run out. A transient failure (the handler returned a
    /// [`TransientError`](crate::projection::TransientError): a broker or service that is down) is retried without limit, at
    /// the longest backoff, until it succeeds or the runner shuts down; its checkpoint does not move meanwhile.
    /// Control requests are carried out during the waits; one that moves the checkpoint ends the retry.
    async fn retry(
        &mut self,
        event: &RecordedEvent,
        failure: BatchError,
        position: &mut Option<Position>,
    ) -> Result<Retried, WorkerError> {
        let options = self.worker.options().clone();
        let (mut error, mut transient) = (failure.error, failure.transient);
        let mut attempt = failure.attempts.max(1);
        while transient || attempt < options.max_attempts {
            attempt = attempt.saturating_add(1);
            telemetry::record_retry(self.worker.name());
            tracing::debug!(projection = self.worker.name(), position = %event.position, attempt, transient, %error, "retrying event");
            if let Waited::Flow(flow) = self
                .wait_active(options.backoff_before(attempt), position)
                .await?
            {
                return Ok(Retried::Interrupted(flow));
            }
            let started = Instant::now();
            match self
                .worker
                .apply(std::slice::from_ref(event), *position, event.position)
                .await
            {
                Ok(()) => {
                    telemetry::record_batch(self.worker.name(), 1, started.elapsed());
                    self.advance(position, event.position, true);
                    return Ok(Retried::Done);
                }
                Err(ApplyError::Handler(failure)) => {
                    attempt = attempt.saturating_add(failure.attempts.saturating_sub(1));
                    error = failure.error;
                    transient = failure.transient;
                }
                Err(ApplyError::Worker(worker)) => return Err(worker),
            }
        }
        Ok(Retried::GaveUp(error, attempt))
    }

    /// Sleeps while active: heartbeats, carries out control requests, and stops early on shutdown or when a
    /// control request moved the checkpoint.
    async fn wait_active(
        &mut self,
        duration: Duration,
        position: &mut Option<Position>,
    ) -> Result<Waited, WorkerError> {
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        let beat = self.worker.heartbeat_interval();
        let mut heartbeat = heartbeats(beat);
        loop {
            let control = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return Ok(Waited::Flow(Flow::Exit(Exit::Shutdown))),
                () = &mut sleep => return Ok(Waited::Elapsed),
                _ = heartbeat.tick(), if beat.is_some() => None,
                Some(control) = self.control.recv() => Some(control),
            };
            match control {
                None => self.worker.heartbeat().await?,
                Some(control) => {
                    if self.control(control, position).await {
                        return Ok(Waited::Flow(Flow::Resubscribe));
                    }
                }
            }
        }
    }

    fn advance(&self, position: &mut Option<Position>, to: Position, handled: bool) {
        *position = Some(to);
        self.status.send_modify(|s| {
            s.checkpoint = Some(to);
            if handled {
                s.last_event_at = Some(Instant::now());
            }
        });
    }

    /// Carries out a control request; true when it moved the checkpoint.
    async fn control(&mut self, control: Control, position: &mut Option<Position>) -> bool {
        match control {
            Control::Rebuild(reply) => {
                let result = self.worker.reset(*position, None).await;
                let moved = result.is_ok();
                if moved {
                    *position = None;
                    self.status.send_modify(|s| s.checkpoint = None);
                }
                let _ = reply.send(result.map_err(RunnerError::from));
                moved
            }
            Control::ResetTo(to, reply) => {
                let result = self.worker.reset(*position, Some(to)).await;
                let moved = result.is_ok();
                if moved {
                    *position = Some(to);
                    self.status.send_modify(|s| s.checkpoint = Some(to));
                }
                let _ = reply.send(result.map_err(RunnerError::from));
                moved
            }
            Control::DeadLetters(reply) => {
                let _ = reply.send(self.worker.dead_letters().await.map_err(RunnerError::from));
                false
            }
            Control::Redrive(reply) => {
                let _ = reply.send(self.redrive().await);
                false
            }
            Control::RedriveOne(event_id, reply) => {
                let _ = reply.send(self.redrive_one(event_id).await);
                false
            }
            Control::Discard(event_id, reply) => {
                let _ = reply.send(self.discard(event_id).await);
                false
            }
            Control::Pause(reply) => {
                self.pause(true);
                let _ = reply.send(Ok(()));
                false
            }
            Control::Resume(reply) => {
                self.pause(false);
                let _ = reply.send(Ok(()));
                false
            }
        }
    }

    fn pause(&mut self, paused: bool) {
        self.paused = paused;
        self.set_state(self.active_state());
        tracing::info!(
            projection = self.worker.name(),
            paused,
            "paused or resumed by an operator"
        );
    }

    /// The dead letter of `event_id`, and the letters of the projection.
    async fn letter(
        &mut self,
        event_id: EventId,
    ) -> Result<(DeadLetter, Vec<DeadLetter>), RunnerError> {
        let letters = self.worker.dead_letters().await?;
        match letters.iter().find(|l| l.event_id == event_id) {
            Some(letter) => Ok((letter.clone(), letters)),
            None => Err(RunnerError::NoDeadLetter {
                name: self.worker.name().to_owned(),
                event_id,
            }),
        }
    }

    /// Handles one dead letter again; under [`FailurePolicy::ParkStream`] only the first of its stream.
    async fn redrive_one(&mut self, event_id: EventId) -> Result<bool, RunnerError> {
        let (letter, letters) = self.letter(event_id).await?;
        if self.worker.options().failure_policy == FailurePolicy::ParkStream
            && let Some(earlier) = letters
                .iter()
                .find(|l| l.stream_id == letter.stream_id && l.position < letter.position)
        {
            return Err(RunnerError::ParkedBehind {
                name: self.worker.name().to_owned(),
                event_id,
                stream: letter.stream_id.clone(),
                earlier: earlier.event_id,
            });
        }
        let handled = self.redrive_letter(&letter).await?;
        self.recount_letters().await?;
        Ok(handled)
    }

    /// Handles `letter`'s event again: true when it succeeded (the worker removed the letter). When it fails, the
    /// letter is replaced by one with the new error, the attempts counted on and the time of this failure.
    async fn redrive_letter(&mut self, letter: &DeadLetter) -> Result<bool, RunnerError> {
        let failure = match event_at(self.store.as_ref(), letter).await? {
            None => BatchError {
                index: 0,
                error:
                    "the stored event does not read back (corrupt); repair the row, then redrive"
                        .to_owned(),
                kept_before: false,
                transient: false,
                attempts: 1,
            },
            Some(event) => match self.worker.redrive(letter, &event).await {
                Ok(()) => return Ok(true),
                Err(ApplyError::Handler(failure)) => failure,
                Err(ApplyError::Worker(error)) => return Err(error.into()),
            },
        };
        tracing::info!(projection = self.worker.name(), event_id = %letter.event_id, error = %failure.error, "redrive failed; the dead letter stays");
        let replaced = DeadLetter {
            error: failure.error,
            attempts: letter.attempts.saturating_add(failure.attempts.max(1)),
            failed_at: Utc::now(),
            ..letter.clone()
        };
        self.worker.replace_dead_letter(replaced).await?;
        Ok(false)
    }

    /// Drops one dead letter.
    async fn discard(&mut self, event_id: EventId) -> Result<(), RunnerError> {
        let (letter, _) = self.letter(event_id).await?;
        self.worker.discard(&letter).await?;
        tracing::info!(projection = self.worker.name(), %event_id, stream = %letter.stream_id, "dead letter discarded");
        self.recount_letters().await
    }

    /// Reads the dead letters again: the parked streams and the count in the status.
    async fn recount_letters(&mut self) -> Result<(), RunnerError> {
        let letters = self.worker.dead_letters().await?;
        self.park_streams_of(&letters);
        self.status.send_modify(|s| s.dead_letters = letters.len());
        Ok(())
    }

    /// Handles the dead letters again, in position order. Under [`FailurePolicy::ParkStream`] a stream's letters
    /// stop at its first one that still fails: the later ones stay parked behind it, in order.
    async fn redrive(&mut self) -> Result<(usize, usize), RunnerError> {
        let in_order = self.worker.options().failure_policy == FailurePolicy::ParkStream;
        let (mut done, mut remaining) = (0, Vec::new());
        let mut stopped = HashSet::new();
        for letter in self.worker.dead_letters().await? {
            if in_order && stopped.contains(&letter.stream_id) {
                remaining.push(letter);
                continue;
            }
            let handled = self.redrive_letter(&letter).await?;
            if handled {
                done += 1;
            } else {
                stopped.insert(letter.stream_id.clone());
                remaining.push(letter);
            }
        }
        self.park_streams_of(&remaining);
        self.status
            .send_modify(|s| s.dead_letters = remaining.len());
        Ok((done, remaining.len()))
    }
}

/// A ticker for heartbeats every `beat` (first one a full period from now); an idle one when there are none.
fn heartbeats(beat: Option<Duration>) -> tokio::time::Interval {
    let period = beat.unwrap_or(Duration::from_secs(3_600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// The parked event, read again by its position (a corrupt one, until it is repaired, is `None`).
async fn event_at(
    store: &dyn EventStore,
    letter: &DeadLetter,
) -> Result<Option<RecordedEvent>, RunnerError> {
    match store.read_all(letter.position.before(), 1).await {
        Ok(events) => Ok(events
            .into_iter()
            .find(|e| e.event_id == letter.event_id && e.position == letter.position)),
        Err(StoreError::Corrupt(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The event a failure policy is applied to: a recorded one, or a stored row that did not read back.
struct Failing {
    position: Position,
    event_id: EventId,
    stream_id: String,
    version: Version,
    event_type: String,
}

impl Failing {
    fn of(event: &RecordedEvent) -> Self {
        Self {
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id.to_string(),
            version: event.version,
            event_type: event.event_type.clone(),
        }
    }
}
