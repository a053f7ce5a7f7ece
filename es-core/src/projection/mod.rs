//! Projections: read models built from the global stream, checkpointed, rebuildable.
//!
//! A [`Projection`] turns events into read-model updates. The [`ProjectionRunner`] feeds it: catch-up in batches,
//! then live from [`EventStore::subscribe_all`](crate::EventStore::subscribe_all), a checkpoint after each batch,
//! retries with backoff, then the projection's [`FailurePolicy`]. Each projection runs through a
//! [`ProjectionWorker`]: [`CheckpointedWorker`] works on any store (at-least-once: handlers see event ids to
//! de-duplicate); `es-postgres` adds one whose handler writes the read model in the transaction that moves the
//! checkpoint (exactly-once effect), and which runs on one process at a time.

mod checkpointed;
mod dead_letter;
mod handler;
mod options;
mod runner;
mod status;
mod worker;

pub use checkpointed::CheckpointedWorker;
pub use dead_letter::{DeadLetter, DeadLetterStore};
pub use handler::{HandlerError, Projection, TransientError, describe, wants};
pub use options::{FailurePolicy, ProjectionOptions};
pub use runner::{DEFAULT_SHUTDOWN_GRACE, ProjectionRunner, RunnerError, RunningProjections};
pub use status::{HeldBack, Holder, ProjectionState, ProjectionStatus};
pub use worker::{Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError};
