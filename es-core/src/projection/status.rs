//! What a running projection reports.

use std::time::Duration;

use crate::Position;

/// Where a projection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectionState {
    /// Waiting to become the active instance (another process runs it).
    Standby,
    /// Catching up or live.
    Running,
    /// Shut down.
    Stopped,
    /// Halted on an event it could not handle ([`FailurePolicy::Stop`](crate::FailurePolicy::Stop)).
    Failed {
        /// The error, naming the event.
        error: String,
    },
}

/// A projection's progress and health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The projection.
    pub name: String,
    /// Its state.
    pub state: ProjectionState,
    /// The position of the last event it finished (its checkpoint); `None` before the first.
    pub checkpoint: Option<Position>,
    /// The newest position in the store when the status was taken.
    pub head: Option<Position>,
    /// Events between the checkpoint and the head.
    pub lag_events: u64,
    /// Time since it last handled an event; `None` before the first.
    pub since_last_event: Option<Duration>,
    /// Its dead letters.
    pub dead_letters: usize,
}
