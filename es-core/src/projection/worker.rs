//! What the runner needs from a projection backend. Implement it to add a flavour; users pick one of
//! [`CheckpointedWorker`](crate::backend::CheckpointedWorker) or `es_postgres::PgProjectionWorker`.

use std::time::Duration;

use async_trait::async_trait;

use crate::projection::replay::Replay;
use crate::projection::{DeadLetter, Holder, ProjectionOptions};
use crate::store::FeedFilter;
use crate::store::error::StoreError;
use crate::store::{Position, RecordedEvent};

/// A worker operation failed (not a handler: the storage under it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This instance lost what made it the active one (its connection, its lock or lease): the runner goes back
    /// to [`acquire`](ProjectionWorker::acquire) and carries on from the stored checkpoint once it is active again.
    #[error("projection `{projection}` lost its active instance: {error}")]
    Lost {
        /// The projection.
        projection: String,
        /// What failed.
        error: String,
    },
    /// The operation needs the active instance, and this one is not it (yet).
    #[error("projection `{projection}` is not active in this process")]
    NotActive {
        /// The projection.
        projection: String,
    },
    /// Another instance moved the checkpoint: this one must stop.
    #[error(
        "projection `{projection}` was moved by another instance (checkpoint at {actual:?}, expected {expected:?})"
    )]
    Fenced {
        /// The projection.
        projection: String,
        /// Where this instance believed it was.
        expected: Option<Position>,
        /// Where it is.
        actual: Option<Position>,
    },
    /// A rebuild or a reset back was refused before anything changed: the read model would count events twice.
    #[error("projection `{projection}` refused the replay: {replay}")]
    ReplayRefused {
        /// The projection.
        projection: String,
        /// What was asked, and what the projection must implement to allow it.
        replay: Replay,
    },
    /// The read model's reset failed during a rebuild.
    #[error("resetting projection `{projection}` failed: {error}")]
    Reset {
        /// The projection.
        projection: String,
        /// Why.
        error: String,
    },
    /// Anything else from the backend.
    #[error("projection `{projection}`: {error}")]
    Other {
        /// The projection.
        projection: String,
        /// What failed.
        error: String,
    },
}

/// A batch stopped at a failing event.
#[derive(Debug)]
pub struct BatchError {
    /// The index of the failing event in the batch.
    pub index: usize,
    /// The handler's error.
    pub error: String,
    /// Whether the events before it were kept with the checkpoint after them (at-least-once flavour) or rolled
    /// back with the batch (transactional flavour).
    pub kept_before: bool,
    /// Whether the handler said the failure is temporary ([`TransientError`](crate::projection::TransientError)): retried
    /// without limit instead of the failure policy.
    pub transient: bool,
    /// How many times this call tried the failing event (1; 2 when a batch failed as a whole and the worker then
    /// handled its events one by one to find the failing one). The runner counts these against
    /// [`max_attempts`](crate::projection::ProjectionOptions::max_attempts).
    pub attempts: u32,
}

/// Why a batch failed: a handler ([`BatchError`]) or the storage ([`WorkerError`]).
#[derive(Debug)]
pub enum ApplyError {
    /// A handler failed.
    Handler(BatchError),
    /// The storage failed.
    Worker(WorkerError),
}

impl From<WorkerError> for ApplyError {
    fn from(error: WorkerError) -> Self {
        Self::Worker(error)
    }
}

/// What [`ProjectionWorker::acquire`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// This instance is now the active one.
    Active,
    /// Another instance is; ask again after `retry_in`.
    Standby {
        /// Who, when the backend can tell.
        holder: Option<Holder>,
        /// When to try again.
        retry_in: Duration,
    },
}

/// One projection, as the runner drives it.
#[async_trait]
pub trait ProjectionWorker: Send + 'static {
    /// The projection's name.
    fn name(&self) -> &str;

    /// Its options.
    fn options(&self) -> &ProjectionOptions;

    /// Tries once to become the instance that runs the projection (another process may hold it); answers
    /// [`Acquired::Active`] at once where there is no such coordination. The runner calls it again after
    /// [`WorkerError::Lost`].
    ///
    /// # Errors
    /// [`WorkerError`] when the coordination itself fails (the database is down): the runner tries again.
    async fn acquire(&mut self) -> Result<Acquired, WorkerError>;

    /// How often the active instance must show it is alive while it has nothing to do (`None`: never). A worker
    /// whose claim expires when its holder goes silent (a lease, a server-side idle timeout) says how often here.
    fn heartbeat_interval(&self) -> Option<Duration> {
        None
    }

    /// Shows the backend this instance is alive (see [`heartbeat_interval`](Self::heartbeat_interval)).
    ///
    /// # Errors
    /// [`WorkerError::Lost`] when the claim is gone.
    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        Ok(())
    }

    /// Gives up the claim when the runner shuts down, so another instance can take over at once instead of after
    /// a lease runs out. By default nothing to give up.
    async fn release(&mut self) {}

    /// What the projection selects from the feed, filtered by the store where it can (by default every event);
    /// [`wants`](Self::wants) still decides for each event.
    fn feed_filter(&self) -> FeedFilter {
        FeedFilter::all()
    }

    /// Whether the projection handles the event stored as `event_type` in `stream` (decided before decoding; see
    /// [`wants`](crate::backend::wants)).
    fn wants(&self, stream: &str, event_type: &str) -> bool;

    /// The stored checkpoint.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError>;

    /// Handles `events` (all wanted) and moves the checkpoint from `from` to `to` (at or after the last of them).
    ///
    /// # Errors
    /// [`ApplyError::Handler`] naming the failing event, [`ApplyError::Worker`] for storage failures.
    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError>;

    /// Parks `letter` and moves the checkpoint from `from` to its position.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn park(&mut self, letter: DeadLetter, from: Option<Position>)
    -> Result<(), WorkerError>;

    /// Empties the read model (for `to == None`, a rebuild) and moves the checkpoint from `from` to `to`.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError>;

    /// The projection's dead letters.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError>;

    /// Drops `letter` without handling its event (an operator's discard).
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError>;

    /// Handles a parked event again and, if it succeeds, removes its dead letter. When it fails again, the runner
    /// records the new error with [`replace_dead_letter`](Self::replace_dead_letter).
    ///
    /// # Errors
    /// [`ApplyError::Handler`] when it fails again.
    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError>;

    /// Replaces the stored dead letter of `letter.event_id` with `letter` (a failed redrive's error, attempts and
    /// time); the checkpoint does not move.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError>;
}
