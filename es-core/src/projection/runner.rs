//! The projection runner: catch-up in batches, then live; checkpoints; retries; control while running.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::projection::worker::ApplyError;
use crate::projection::{
    CheckpointedWorker, DeadLetter, DeadLetterStore, FailurePolicy, Projection, ProjectionOptions,
    ProjectionState, ProjectionStatus, ProjectionWorker, WorkerError,
};
use crate::{CheckpointStore, EventStore, Position, RecordedEvent, StreamRead};

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
    /// The worker failed the operation.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// Collects projections and starts them.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use es_core::{
///     DomainEvent, EventStore, ExpectedVersion, HandlerError, NewEvent, Projection, ProjectionOptions,
///     ProjectionRunner, RecordedEvent, StreamId,
/// };
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
        }
    }

    /// Adds a projection run by `worker`.
    pub fn with(mut self, worker: impl ProjectionWorker) -> Self {
        self.workers.push(Box::new(worker));
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

    /// Starts every projection on its own task. Must be called inside a Tokio runtime.
    pub fn start(self) -> RunningProjections {
        let (shutdown, _) = watch::channel(false);
        let store: Arc<dyn EventStore> = Arc::new(self.store);
        let mut projections = HashMap::new();
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
        RunningProjections {
            projections,
            shutdown,
            store,
        }
    }
}

/// What a projection task publishes.
#[derive(Clone, Debug)]
struct TaskStatus {
    state: ProjectionState,
    checkpoint: Option<Position>,
    last_event_at: Option<Instant>,
    /// Kept by the task (read at start, then counted), so a status call never waits for a busy task.
    dead_letters: usize,
}

impl Default for TaskStatus {
    fn default() -> Self {
        Self {
            state: ProjectionState::Standby,
            checkpoint: None,
            last_event_at: None,
            dead_letters: 0,
        }
    }
}

enum Control {
    Rebuild(oneshot::Sender<Result<(), WorkerError>>),
    ResetTo(Position, oneshot::Sender<Result<(), WorkerError>>),
    DeadLetters(oneshot::Sender<Result<Vec<DeadLetter>, WorkerError>>),
    Redrive(oneshot::Sender<Result<(usize, usize), RunnerError>>),
}

struct Handle {
    control: mpsc::Sender<Control>,
    status: watch::Receiver<TaskStatus>,
    join: JoinHandle<()>,
}

/// The running projections: status, read-your-writes, rebuild, dead letters, shutdown.
pub struct RunningProjections {
    projections: HashMap<String, Handle>,
    shutdown: watch::Sender<bool>,
    store: Arc<dyn EventStore>,
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

    /// Projection `name`'s progress and health.
    ///
    /// # Errors
    /// [`RunnerError::UnknownProjection`], [`RunnerError::Store`] when the head cannot be read.
    pub async fn status(&self, name: &str) -> Result<ProjectionStatus, RunnerError> {
        let handle = self.handle(name)?;
        let now = handle.status.borrow().clone();
        let head = self.store.head().await?;
        let lag_events = match (now.checkpoint, head) {
            (_, None) => 0,
            (checkpoint, Some(_)) => {
                self.store
                    .count_after(checkpoint.unwrap_or(Position::START))
                    .await?
            }
        };
        let dead_letters = now.dead_letters;
        Ok(ProjectionStatus {
            name: name.to_owned(),
            state: now.state,
            checkpoint: now.checkpoint,
            head,
            lag_events,
            since_last_event: now.last_event_at.map(|at| at.elapsed()),
            dead_letters,
        })
    }

    async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, RunnerError> {
        let handle = self.handle(name)?;
        let (reply, answer) = oneshot::channel();
        let not_running = || RunnerError::NotRunning {
            name: name.to_owned(),
            state: handle.status.borrow().state.clone(),
        };
        handle
            .control
            .send(make(reply))
            .await
            .map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())
    }

    /// Empties projection `name`'s read model and checkpoint, and replays every event into it.
    ///
    /// # Errors
    /// [`RunnerError::Worker`] when the reset fails; [`RunnerError::NotRunning`].
    pub async fn rebuild(&self, name: &str) -> Result<(), RunnerError> {
        Ok(self.ask(name, Control::Rebuild).await??)
    }

    /// Moves projection `name`'s checkpoint to `position` (events after it are handled next).
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn reset_to(&self, name: &str, position: Position) -> Result<(), RunnerError> {
        Ok(self
            .ask(name, |reply| Control::ResetTo(position, reply))
            .await??)
    }

    /// Projection `name`'s dead letters.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, RunnerError> {
        Ok(self.ask(name, Control::DeadLetters).await??)
    }

    /// Handles projection `name`'s dead letters again; returns how many now succeeded and how many still fail.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn redrive(&self, name: &str) -> Result<(usize, usize), RunnerError> {
        self.ask(name, Control::Redrive).await?
    }

    /// Stops every projection after the batch in flight, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for (name, handle) in self.projections {
            if let Err(error) = handle.join.await {
                tracing::error!(projection = %name, %error, "projection task panicked");
            }
        }
    }
}

/// How retrying a failing event ended.
enum Retried {
    /// It succeeded.
    Done,
    /// Its attempts ran out, with the last error.
    GaveUp(String),
    /// The runner is shutting down.
    Shutdown,
}

/// Why a projection task left its loop.
enum Exit {
    Shutdown,
    Failed(String),
}

struct Task {
    store: Arc<dyn EventStore>,
    worker: Box<dyn ProjectionWorker>,
    status: watch::Sender<TaskStatus>,
    control: mpsc::Receiver<Control>,
    shutdown: watch::Receiver<bool>,
}

impl Task {
    async fn run(mut self) {
        let name = self.worker.name().to_owned();
        let exit = self.lifecycle().await;
        let state = match exit {
            Exit::Shutdown => ProjectionState::Stopped,
            Exit::Failed(error) => {
                tracing::error!(projection = %name, %error, "projection halted");
                ProjectionState::Failed { error }
            }
        };
        self.status.send_modify(|s| s.state = state);
    }

    async fn lifecycle(&mut self) -> Exit {
        tokio::select! {
            acquired = self.worker.acquire() => if let Err(error) = acquired {
                return Exit::Failed(error.to_string());
            },
            _ = self.shutdown.wait_for(|stop| *stop) => return Exit::Shutdown,
        }
        let mut position = loop {
            match self.worker.checkpoint().await {
                Ok(position) => break position,
                Err(error) => {
                    tracing::warn!(projection = self.worker.name(), %error, "cannot read checkpoint; retrying in 1 s");
                    if self.pause(Duration::from_secs(1)).await {
                        return Exit::Shutdown;
                    }
                }
            }
        };
        let dead_letters = self
            .worker
            .dead_letters()
            .await
            .map(|l| l.len())
            .unwrap_or_default();
        self.status.send_modify(|s| {
            s.state = ProjectionState::Running;
            s.checkpoint = position;
            s.dead_letters = dead_letters;
        });
        loop {
            match self.follow(&mut position).await {
                Ok(exit) => return exit,
                Err(WorkerError::Store(error)) => {
                    tracing::warn!(projection = self.worker.name(), %error, "store failed; resuming in 1 s");
                    if self.pause(Duration::from_secs(1)).await {
                        return Exit::Shutdown;
                    }
                    if let Ok(stored) = self.worker.checkpoint().await {
                        position = stored;
                    }
                }
                Err(other) => return Exit::Failed(other.to_string()),
            }
        }
    }

    /// Sleeps, unless shutdown comes first (then returns true).
    async fn pause(&mut self, duration: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => false,
            _ = self.shutdown.wait_for(|stop| *stop) => true,
        }
    }

    /// Subscribes after `position` and processes batches until shutdown, failure, or a control message that moves
    /// the checkpoint (then subscribes again).
    async fn follow(&mut self, position: &mut Option<Position>) -> Result<Exit, WorkerError> {
        'subscribe: loop {
            let mut events = self
                .store
                .subscribe_all(position.unwrap_or(Position::START));
            loop {
                let first = tokio::select! {
                    biased;
                    _ = self.shutdown.wait_for(|stop| *stop) => return Ok(Exit::Shutdown),
                    Some(control) = self.control.recv() => Err(control),
                    next = events.next() => Ok(next),
                };
                let mut batch = match first {
                    Err(control) => {
                        self.control(control, position).await;
                        continue 'subscribe;
                    }
                    Ok(Some(Ok(event))) => vec![event],
                    Ok(Some(Err(error))) => return Err(WorkerError::Store(error)),
                    Ok(None) => continue 'subscribe,
                };
                let batch_size = self.worker.options().batch_size;
                while batch.len() < batch_size {
                    match events.next().now_or_never() {
                        Some(Some(Ok(event))) => batch.push(event),
                        _ => break,
                    }
                }
                let span = tracing::info_span!(
                    "projection_batch",
                    projection = self.worker.name(),
                    from = %position.unwrap_or(Position::START),
                    to = %batch.last().map_or(Position::START, |e| e.position),
                    events = batch.len(),
                );
                if let Some(exit) = self.process(batch, position).instrument(span).await? {
                    return Ok(exit);
                }
            }
        }
    }

    /// Applies one batch; on a failing event, retries it alone with backoff, then applies the failure policy.
    /// Returns `Some(exit)` when the projection must stop (it failed, or the runner shuts down mid-retry).
    async fn process(
        &mut self,
        batch: Vec<RecordedEvent>,
        position: &mut Option<Position>,
    ) -> Result<Option<Exit>, WorkerError> {
        let Some(to) = batch.last().map(|e| e.position) else {
            return Ok(None);
        };
        let wanted: Vec<RecordedEvent> =
            batch.into_iter().filter(|e| self.worker.wants(e)).collect();
        let mut start = 0;
        loop {
            let (failing, error) = match self.worker.apply(&wanted[start..], *position, to).await {
                Ok(()) => {
                    self.advance(position, to, !wanted[start..].is_empty());
                    return Ok(None);
                }
                Err(ApplyError::Worker(error)) => return Err(error),
                Err(ApplyError::Handler(failure)) => {
                    let failing = start + failure.index;
                    if failure.index > 0 {
                        if failure.kept_before {
                            self.advance(position, wanted[failing - 1].position, true);
                        } else {
                            // The transaction rolled back: apply the events before the failing one on their own.
                            match self
                                .worker
                                .apply(
                                    &wanted[start..failing],
                                    *position,
                                    wanted[failing - 1].position,
                                )
                                .await
                            {
                                Ok(()) => {
                                    self.advance(position, wanted[failing - 1].position, true)
                                }
                                Err(ApplyError::Worker(error)) => return Err(error),
                                Err(ApplyError::Handler(_)) => continue,
                            }
                        }
                    }
                    (failing, (failure.error, failure.transient))
                }
            };
            let event = &wanted[failing];
            let (error, transient) = error;
            let error = match self.retry(event, error, transient, position).await? {
                Retried::Done => None,
                Retried::GaveUp(error) => Some(error),
                Retried::Shutdown => return Ok(Some(Exit::Shutdown)),
            };
            if let Some(error) = error {
                let attempts = self.worker.options().max_attempts;
                match self.worker.options().failure_policy {
                    FailurePolicy::Stop => {
                        return Ok(Some(Exit::Failed(format!(
                            "event {}@{} (position {}, id {}, type `{}`) failed after {attempts} attempts: {error}",
                            event.stream_id,
                            event.version,
                            event.position,
                            event.event_id,
                            event.event_type
                        ))));
                    }
                    FailurePolicy::DeadLetter => {
                        tracing::warn!(projection = self.worker.name(), position = %event.position, %error, "parking event as a dead letter");
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
                    }
                }
            }
            start = failing + 1;
        }
    }

    /// Retries `event` alone until it succeeds or its attempts run out. A transient failure (the handler returned a
    /// [`TransientError`](crate::TransientError): a broker or service that is down) is retried without limit, at
    /// the longest backoff, until it succeeds or the runner shuts down; its checkpoint does not move meanwhile.
    async fn retry(
        &mut self,
        event: &RecordedEvent,
        mut error: String,
        mut transient: bool,
        position: &mut Option<Position>,
    ) -> Result<Retried, WorkerError> {
        let options = self.worker.options().clone();
        let mut attempt = 1;
        while transient || attempt < options.max_attempts {
            attempt += 1;
            tracing::debug!(projection = self.worker.name(), position = %event.position, attempt, transient, %error, "retrying event");
            if self.pause(options.backoff_before(attempt)).await {
                return Ok(Retried::Shutdown);
            }
            match self
                .worker
                .apply(std::slice::from_ref(event), *position, event.position)
                .await
            {
                Ok(()) => {
                    self.advance(position, event.position, true);
                    return Ok(Retried::Done);
                }
                Err(ApplyError::Handler(failure)) => {
                    error = failure.error;
                    transient = failure.transient;
                }
                Err(ApplyError::Worker(worker)) => return Err(worker),
            }
        }
        Ok(Retried::GaveUp(error))
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

    async fn control(&mut self, control: Control, position: &mut Option<Position>) {
        match control {
            Control::Rebuild(reply) => {
                let result = self.worker.reset(*position, None).await;
                if result.is_ok() {
                    *position = None;
                    self.status.send_modify(|s| s.checkpoint = None);
                }
                let _ = reply.send(result);
            }
            Control::ResetTo(to, reply) => {
                let result = self.worker.reset(*position, Some(to)).await;
                if result.is_ok() {
                    *position = Some(to);
                    self.status.send_modify(|s| s.checkpoint = Some(to));
                }
                let _ = reply.send(result);
            }
            Control::DeadLetters(reply) => {
                let _ = reply.send(self.worker.dead_letters().await);
            }
            Control::Redrive(reply) => {
                let _ = reply.send(self.redrive().await);
            }
        }
    }

    async fn redrive(&mut self) -> Result<(usize, usize), RunnerError> {
        let (mut done, mut failing) = (0, 0);
        for letter in self.worker.dead_letters().await? {
            let read = StreamRead::forward().from(letter.version).limit(1);
            let events = self.store.read_stream(&letter.stream_id, read).await?;
            let Some(event) = events.into_iter().find(|e| e.event_id == letter.event_id) else {
                failing += 1;
                continue;
            };
            match self.worker.redrive(&letter, &event).await {
                Ok(()) => done += 1,
                Err(ApplyError::Handler(_)) => failing += 1,
                Err(ApplyError::Worker(error)) => return Err(error.into()),
            }
        }
        self.status.send_modify(|s| s.dead_letters = failing);
        Ok((done, failing))
    }
}
