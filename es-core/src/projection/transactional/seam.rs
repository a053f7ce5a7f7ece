//! What a store supplies to [`TransactionalWorker`](super::TransactionalWorker): its claim, its transaction and its
//! SQL.

use std::time::Duration;

use async_trait::async_trait;

use crate::event::EventId;
use crate::projection::worker::{Acquired, WorkerError};
use crate::projection::{DeadLetter, HandlerError};
use crate::store::{FeedFilter, Position, RecordedEvent};

/// Why a step of a [`TransactionalBackend`] failed.
#[derive(Debug)]
pub enum TxFailure {
    /// The handler failed on the event at `index` of the slice it was given (counted from the batch's start).
    Handler {
        /// The failing event's index in the batch.
        index: usize,
        /// The handler's error, as text.
        error: String,
        /// Whether the handler said it is temporary.
        transient: bool,
    },
    /// A handler given several events at once failed without saying which: the worker rolls the batch back and
    /// applies its events one at a time to find out.
    Batch,
    /// The checkpoint was not where this instance expected it: another instance moved it (here: where it is).
    Fenced(Option<Position>),
    /// Anything else, as the runner should see it: [`WorkerError::Lost`] when the claim or its connection is gone
    /// (the backend has already let go of it), [`WorkerError::Store`] for a failing store.
    Worker(WorkerError),
}

impl From<WorkerError> for TxFailure {
    fn from(error: WorkerError) -> Self {
        Self::Worker(error)
    }
}

/// The seam between the exactly-once worker and a store: the store's claim (an advisory lock, a lease), its write
/// transaction and the statements run in it. [`TransactionalWorker`](super::TransactionalWorker) drives it; the
/// PostgreSQL and SQLite workers are this trait implemented for their connections.
///
/// Every step between [`begin`](Self::begin) and [`commit`](Self::commit) runs in one transaction; when a step fails
/// the worker calls [`rollback`](Self::rollback). Steps outside a transaction (listing, discarding or replacing a
/// dead letter) commit on their own.
#[async_trait]
pub trait TransactionalBackend: Send + 'static {
    /// The worker's name: the key of its checkpoint and dead letters.
    fn name(&self) -> &str;

    /// What it selects from the feed.
    fn feed_filter(&self) -> FeedFilter;

    /// Whether it handles the event stored as `event_type` in `stream`.
    fn wants(&self, stream: &str, event_type: &str) -> bool;

    /// Whether the projection's handlers change nothing when they see an event again (see
    /// [`Projection::idempotent`](crate::projection::Projection::idempotent)).
    fn idempotent(&self) -> bool;

    /// Tries once to take the claim (and sets up what the read model needs before its first batch).
    ///
    /// # Errors
    /// [`WorkerError`] when the claim cannot be tried (the store is down) or the read model is invalid.
    async fn acquire(&mut self) -> Result<Acquired, WorkerError>;

    /// How often the active instance shows it is alive while idle (`None`: never).
    fn heartbeat_interval(&self) -> Option<Duration>;

    /// Shows the store this instance still holds the claim.
    ///
    /// # Errors
    /// [`WorkerError::Lost`] when the claim is gone.
    async fn heartbeat(&mut self) -> Result<(), WorkerError>;

    /// Gives the claim up.
    async fn release(&mut self);

    /// Before each batch: fails [`WorkerError::Lost`] when this instance should hand its claim over (a partition
    /// held beyond this process's share). Nothing by default.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn before_batch(&mut self) -> Result<(), WorkerError> {
        Ok(())
    }

    /// The stored checkpoint.
    ///
    /// # Errors
    /// [`TxFailure`].
    async fn load_checkpoint(&mut self) -> Result<Option<Position>, TxFailure>;

    /// Opens the transaction, under the claim: fails ([`WorkerError::Lost`]) when the claim is no longer this
    /// instance's, so a paused instance commits nothing after another took over.
    ///
    /// # Errors
    /// [`TxFailure`].
    async fn begin(&mut self) -> Result<(), TxFailure>;

    /// Commits the transaction.
    ///
    /// # Errors
    /// [`TxFailure`]: nothing of the transaction is kept.
    async fn commit(&mut self) -> Result<(), TxFailure>;

    /// Rolls the transaction back (or lets go of a connection that cannot).
    async fn rollback(&mut self);

    /// Decodes `events` and has the projection apply them in the transaction, as one batch; `first` is the index
    /// of `events[0]` in the whole batch, for [`TxFailure::Handler`].
    ///
    /// # Errors
    /// [`TxFailure::Handler`] naming the failing event when it is known, [`TxFailure::Batch`] when a handler given
    /// several events failed as a whole.
    async fn handle(&mut self, first: usize, events: &[RecordedEvent]) -> Result<(), TxFailure>;

    /// Moves the checkpoint from `from` to `to` by compare-and-set, in the transaction.
    ///
    /// # Errors
    /// [`TxFailure::Fenced`] with where it is when it was not at `from`.
    async fn move_checkpoint(
        &mut self,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), TxFailure>;

    /// Empties the read model for a rebuild, in the transaction: the store's own tables where it owns them, and
    /// the projection's `reset`, whose answer it returns (`Err(NoReset)` when a hand-written read model has none).
    ///
    /// # Errors
    /// [`TxFailure`] when the store fails.
    async fn reset_read_model(&mut self) -> Result<Result<(), HandlerError>, TxFailure>;

    /// Deletes the checkpoint (a rebuild starts from the beginning), in the transaction.
    ///
    /// # Errors
    /// [`TxFailure`].
    async fn delete_checkpoint(&mut self) -> Result<(), TxFailure>;

    /// Stores `letter` (replacing the letter of the same event), in the open transaction or on its own.
    ///
    /// # Errors
    /// [`TxFailure`].
    async fn park(&mut self, letter: &DeadLetter) -> Result<(), TxFailure>;

    /// Removes the dead letter of `event_id`, in the open transaction or on its own.
    ///
    /// # Errors
    /// [`TxFailure`].
    async fn remove_dead_letter(&mut self, event_id: EventId) -> Result<(), TxFailure>;

    /// The dead letters.
    ///
    /// # Errors
    /// [`TxFailure`].
    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, TxFailure>;

    /// After a batch committed up to `to`: a read model built beside the live one may switch over. Nothing by
    /// default.
    ///
    /// # Errors
    /// [`WorkerError`].
    async fn committed(&mut self, to: Position) -> Result<(), WorkerError> {
        let _ = to;
        Ok(())
    }
}
