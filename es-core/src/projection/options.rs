//! How a projection is run.

use std::time::Duration;

/// What happens to an event whose handler still fails after every retry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The projection halts with the error, its checkpoint just before the event; other projections go on.
    #[default]
    Stop,
    /// The event is parked as a dead letter (projection, position, event id, error, attempts) and processing
    /// continues. Dead letters can be listed and redriven.
    DeadLetter,
    /// The event is parked as a dead letter, and so is every later event of the same stream, in order, without
    /// being handled, while the other streams go on: a stream's read model never skips an event and then applies
    /// the ones after it. [`redrive`](crate::projection::RunningProjections::redrive) replays each stream's parked
    /// events in order, stopping at the first that still fails (the stream stays parked from there). Which
    /// streams are parked is read from the dead letters, so it survives restarts.
    ParkStream,
}

/// Batch size, retries and failure policy of one projection.
///
/// ```
/// use std::time::Duration;
/// use es_core::projection::{FailurePolicy, ProjectionOptions};
///
/// let options = ProjectionOptions::default()
///     .batch_size(500)
///     .max_attempts(5)
///     .backoff(Duration::from_millis(50), Duration::from_secs(2))
///     .on_failure(FailurePolicy::DeadLetter);
/// assert_eq!(options.batch_size, 500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionOptions {
    /// Events per batch (and per checkpoint) at most.
    pub batch_size: usize,
    /// Attempts per failing event, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles per retry.
    pub initial_backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// What happens after the last attempt.
    pub failure_policy: FailurePolicy,
    /// How many events with different keys ([`Projection::key`](crate::Projection::key)) the at-least-once
    /// worker handles at once within a batch (default 1: one at a time). Events with the same key keep their
    /// order; the checkpoint still moves only past events that were all handled.
    pub concurrency: usize,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            failure_policy: FailurePolicy::Stop,
            concurrency: 1,
        }
    }
}

impl ProjectionOptions {
    /// Events per batch (at least 1).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Attempts per failing event (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Retry waits: `initial`, doubling, at most `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// What happens after the last attempt.
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// The wait before attempt `attempt` (2 or more).
    /// Handles up to `n` differently keyed events of a batch at once (at least 1); see
    /// [`concurrency`](Self::concurrency).
    ///
    /// ```
    /// use es_core::projection::ProjectionOptions;
    ///
    /// let options = ProjectionOptions::default().concurrency(16);
    /// assert_eq!(options.concurrency, 16);
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    pub(crate) fn backoff_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(20);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}
