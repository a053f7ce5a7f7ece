//! The policy that decides when the repository writes a snapshot.

use std::fmt;
use std::sync::Arc;

use crate::store::Version;

/// What a [`SnapshotPolicy`] decides on, after a command appended events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotDue {
    /// The stream's version after the command.
    pub version: Version,
    /// Events in the stream since the snapshot the command's state was loaded from (all of them without one).
    pub events_since_snapshot: u64,
    /// Events the command appended.
    pub new_events: usize,
}

/// When the repository writes a snapshot after [`execute`](crate::Repository::execute).
///
/// ```
/// use es_core::Version;
/// use es_core::aggregate::{SnapshotDue, SnapshotPolicy};
///
/// let due = SnapshotDue { version: Version::new(250), events_since_snapshot: 100, new_events: 1 };
/// assert!(SnapshotPolicy::every(100).is_due(&due));
/// assert!(!SnapshotPolicy::Never.is_due(&due));
/// assert!(SnapshotPolicy::custom(|due| due.version.get() % 50 == 0).is_due(&due));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum SnapshotPolicy {
    /// Never write snapshots (existing ones are still used by `load`).
    #[default]
    Never,
    /// Write one once at least this many events accumulated since the last one.
    EveryEvents(u64),
    /// Decide with a function.
    Custom(Arc<dyn Fn(&SnapshotDue) -> bool + Send + Sync>),
}

impl SnapshotPolicy {
    /// A snapshot once `events` events accumulated since the last one (at least 1).
    pub fn every(events: u64) -> Self {
        Self::EveryEvents(events.max(1))
    }

    /// A snapshot whenever `decide` says so.
    pub fn custom(decide: impl Fn(&SnapshotDue) -> bool + Send + Sync + 'static) -> Self {
        Self::Custom(Arc::new(decide))
    }

    /// Whether a snapshot is due.
    pub fn is_due(&self, due: &SnapshotDue) -> bool {
        match self {
            Self::Never => false,
            Self::EveryEvents(events) => due.events_since_snapshot >= *events,
            Self::Custom(decide) => decide(due),
        }
    }
}

impl fmt::Debug for SnapshotPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("Never"),
            Self::EveryEvents(n) => write!(f, "EveryEvents({n})"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}
