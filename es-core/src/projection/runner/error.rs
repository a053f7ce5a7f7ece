//! [`RunnerError`]: what a runner operation can fail with.

use std::time::Duration;

use crate::projection::ProjectionState;
use crate::projection::worker::WorkerError;
use crate::store::{EventId, Position};

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
    /// The dead letter waits behind an earlier one of its stream ([`FailurePolicy::ParkStream`](crate::projection::FailurePolicy::ParkStream)): redrive that one
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
