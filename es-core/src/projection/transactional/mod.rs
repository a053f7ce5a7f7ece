//! The exactly-once worker, written once: each batch's read-model writes and its checkpoint in one transaction of
//! the store, under a claim that makes one instance at a time the active one. A store supplies the claim and its
//! statements through [`TransactionalBackend`]; `es_postgres::PgProjectionWorker` and
//! `es_sqlite::SqliteProjectionWorker` are this worker on their backends.

mod seam;

use std::time::Duration;

use async_trait::async_trait;

pub use seam::{TransactionalBackend, TxFailure};

use crate::projection::replay::{rebuild_allowed, reset_allowed};
use crate::projection::worker::{Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError};
use crate::projection::{DeadLetter, ProjectionOptions};
use crate::store::{FeedFilter, Position, RecordedEvent};

/// Runs a projection exactly once per event on a [`TransactionalBackend`]: a batch is applied and its checkpoint
/// moved (by compare-and-set) in one transaction, so after a crash the read model is exactly as far as its
/// checkpoint. A handler given a whole batch that fails is applied again one event at a time to find the failing
/// event; the events before it are kept and the failure policy applies to it alone. Dead letters are parked in the
/// transaction that moves the checkpoint past them, and redriven in the transaction that removes them.
///
/// A store wraps it in its own worker type (`PgProjectionWorker`, `SqliteProjectionWorker`); a new store
/// implements [`TransactionalBackend`] and gets the same behaviour, proved by the same worker suite.
///
/// ```
/// use es_core::backend::{TransactionalBackend, TransactionalWorker};
/// use es_core::projection::ProjectionOptions;
///
/// fn worker<B: TransactionalBackend>(backend: B) -> TransactionalWorker<B> {
///     TransactionalWorker::new(backend, ProjectionOptions::default().batch_size(100))
/// }
/// # let _ = worker::<Never>;
/// # struct Never;
/// # #[es_core::async_trait] impl TransactionalBackend for Never {
/// #   fn name(&self) -> &str { "" }
/// #   fn feed_filter(&self) -> es_core::store::FeedFilter { es_core::store::FeedFilter::all() }
/// #   fn wants(&self, _: &str, _: &str) -> bool { false }
/// #   fn idempotent(&self) -> bool { false }
/// #   async fn acquire(&mut self) -> Result<es_core::backend::Acquired, es_core::backend::WorkerError> { unimplemented!() }
/// #   fn heartbeat_interval(&self) -> Option<std::time::Duration> { None }
/// #   async fn heartbeat(&mut self) -> Result<(), es_core::backend::WorkerError> { Ok(()) }
/// #   async fn release(&mut self) {}
/// #   async fn load_checkpoint(&mut self) -> Result<Option<es_core::Position>, es_core::backend::TxFailure> { Ok(None) }
/// #   async fn begin(&mut self) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn commit(&mut self) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn rollback(&mut self) {}
/// #   async fn handle(&mut self, _: usize, _: &[es_core::RecordedEvent]) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn move_checkpoint(&mut self, _: Option<es_core::Position>, _: es_core::Position) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn reset_read_model(&mut self) -> Result<Result<(), es_core::projection::HandlerError>, es_core::backend::TxFailure> { Ok(Ok(())) }
/// #   async fn delete_checkpoint(&mut self) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn park(&mut self, _: &es_core::projection::DeadLetter) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn remove_dead_letter(&mut self, _: es_core::EventId) -> Result<(), es_core::backend::TxFailure> { Ok(()) }
/// #   async fn dead_letters(&mut self) -> Result<Vec<es_core::projection::DeadLetter>, es_core::backend::TxFailure> { Ok(vec![]) }
/// # }
/// ```
#[derive(Debug)]
pub struct TransactionalWorker<B> {
    backend: B,
    options: ProjectionOptions,
}

impl<B: TransactionalBackend> TransactionalWorker<B> {
    /// The worker of `backend`.
    pub fn new(backend: B, options: ProjectionOptions) -> Self {
        Self { backend, options }
    }

    /// Its backend, to configure it before the worker starts.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Runs `steps` in one transaction: committed when they succeed, rolled back when one fails.
    async fn in_tx(&mut self, steps: Steps<'_>) -> Result<(), TxFailure> {
        self.backend.begin().await?;
        let result = self.run(steps).await;
        match result {
            Ok(()) => self.backend.commit().await,
            Err(failure) => {
                self.backend.rollback().await;
                Err(failure)
            }
        }
    }

    async fn run(&mut self, steps: Steps<'_>) -> Result<(), TxFailure> {
        let backend = &mut self.backend;
        match steps {
            Steps::Apply {
                events,
                from,
                to,
                one_by_one,
            } => {
                if one_by_one {
                    for (index, event) in events.iter().enumerate() {
                        backend.handle(index, std::slice::from_ref(event)).await?;
                    }
                } else if !events.is_empty() {
                    backend.handle(0, events).await?;
                }
                backend.move_checkpoint(from, to).await
            }
            Steps::Park { letter, from } => {
                backend.park(letter).await?;
                backend.move_checkpoint(from, letter.position).await
            }
            Steps::Rebuild => {
                let reset = backend.reset_read_model().await?;
                rebuild_allowed(backend.name(), reset, backend.idempotent())?;
                backend.delete_checkpoint().await
            }
            Steps::Move { from, to } => backend.move_checkpoint(from, to).await,
            Steps::Redrive { letter, event } => {
                backend.handle(0, std::slice::from_ref(event)).await?;
                backend.remove_dead_letter(letter.event_id).await
            }
        }
    }

    /// The runner's view of `failure`, for a call that tried the failing event `attempts` times.
    fn apply_error(
        &self,
        failure: TxFailure,
        expected: Option<Position>,
        attempts: u32,
    ) -> ApplyError {
        match failure {
            TxFailure::Handler {
                index,
                error,
                transient,
            } => ApplyError::Handler(BatchError {
                index,
                error,
                transient,
                kept_before: false,
                attempts,
            }),
            other => ApplyError::Worker(self.worker_error(other, expected)),
        }
    }

    fn worker_error(&self, failure: TxFailure, expected: Option<Position>) -> WorkerError {
        let projection = self.backend.name().to_owned();
        match failure {
            TxFailure::Handler { error, .. } => WorkerError::Other { projection, error },
            TxFailure::Batch => WorkerError::Other {
                projection,
                error: "a batch handler failed".to_owned(),
            },
            TxFailure::Fenced(actual) => WorkerError::Fenced {
                projection,
                expected,
                actual,
            },
            TxFailure::Worker(error) => error,
        }
    }
}

/// What one transaction does.
enum Steps<'a> {
    Apply {
        events: &'a [RecordedEvent],
        from: Option<Position>,
        to: Position,
        one_by_one: bool,
    },
    Park {
        letter: &'a DeadLetter,
        from: Option<Position>,
    },
    Rebuild,
    Move {
        from: Option<Position>,
        to: Position,
    },
    Redrive {
        letter: &'a DeadLetter,
        event: &'a RecordedEvent,
    },
}

#[async_trait]
impl<B: TransactionalBackend> ProjectionWorker for TransactionalWorker<B> {
    fn name(&self) -> &str {
        self.backend.name()
    }

    fn options(&self) -> &ProjectionOptions {
        &self.options
    }

    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
        self.backend.acquire().await
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        self.backend.heartbeat_interval()
    }

    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        self.backend.heartbeat().await
    }

    async fn release(&mut self) {
        self.backend.release().await;
    }

    fn feed_filter(&self) -> FeedFilter {
        self.backend.feed_filter()
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        self.backend.wants(stream, event_type)
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        let loaded = self.backend.load_checkpoint().await;
        loaded.map_err(|failure| self.worker_error(failure, None))
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError> {
        self.backend.before_batch().await?;
        let batch = |one_by_one| Steps::Apply {
            events,
            from,
            to,
            one_by_one,
        };
        let (result, attempts) = match self.in_tx(batch(false)).await {
            // Which event failed? Apply them one by one (a transient failure may not come back at all): the
            // failing one is then tried a second time.
            Err(TxFailure::Batch) => (self.in_tx(batch(true)).await, 2),
            other => (other, 1),
        };
        result.map_err(|failure| self.apply_error(failure, from, attempts))?;
        Ok(self.backend.committed(to).await?)
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let parked = self
            .in_tx(Steps::Park {
                letter: &letter,
                from,
            })
            .await;
        parked.map_err(|failure| self.worker_error(failure, from))
    }

    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        let steps = match to {
            None => Steps::Rebuild,
            Some(to) => {
                reset_allowed(self.backend.name(), from, to, self.backend.idempotent())?;
                Steps::Move { from, to }
            }
        };
        let reset = self.in_tx(steps).await;
        reset.map_err(|failure| match failure {
            TxFailure::Handler { error, .. } => WorkerError::Reset {
                projection: self.backend.name().to_owned(),
                error,
            },
            other => self.worker_error(other, from),
        })
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        let letters = self.backend.dead_letters().await;
        letters.map_err(|failure| self.worker_error(failure, None))
    }

    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError> {
        let removed = self.backend.remove_dead_letter(letter.event_id).await;
        removed.map_err(|failure| self.worker_error(failure, None))
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let redriven = self.in_tx(Steps::Redrive { letter, event }).await;
        redriven.map_err(|failure| self.apply_error(failure, None, 1))
    }

    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        let parked = self.backend.park(&letter).await;
        parked.map_err(|failure| self.worker_error(failure, None))
    }
}
