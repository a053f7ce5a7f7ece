//! [`ProjectionRunner`]: collects projections and starts each as a task.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::control::{Controlled, Supervisor, TaskStatus};
use super::running::{Handle, RunningProjections};
use super::task::Task;
use crate::projection::CheckpointStore;
use crate::projection::checkpointed::CheckpointedWorker;
use crate::projection::sampler::sample_metrics;
use crate::projection::shared_feed::Feed;
use crate::projection::worker::ProjectionWorker;
use crate::projection::{DeadLetterStore, Projection, ProjectionOptions};
use crate::store::EventStore;
use crate::store::FeedFilter;

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
    pub(super) store: S,
    pub(super) workers: Vec<Box<dyn ProjectionWorker>>,
    pub(super) metrics_every: Option<Duration>,
    pub(super) supervisor: Option<Arc<dyn Supervisor>>,
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
            supervisor: None,
        }
    }

    /// Runs `supervisor` beside the projections (the control plane's agent: see
    /// [`control_plane`](Self::control_plane)).
    pub(crate) fn supervised(mut self, supervisor: Arc<dyn Supervisor>) -> Self {
        self.supervisor = Some(supervisor);
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
        let pauses = self.supervisor.clone();
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
        let agent = self.supervisor.map(|supervisor| {
            let controlled = projections
                .iter()
                .map(|(name, handle)| Controlled {
                    name: name.clone(),
                    control: handle.control.clone(),
                    status: handle.status.clone(),
                })
                .collect();
            supervisor.start(controlled, shutdown.subscribe())
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
