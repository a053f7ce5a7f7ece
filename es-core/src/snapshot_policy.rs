//! Snapshotting aggregates, and the policy that decides when the repository writes a snapshot.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Aggregate, Version};

/// An aggregate whose state can be stored as a snapshot, so that loading it folds only the events after the
/// snapshot. Opt in per aggregate; turn it on with [`Repository::with_snapshots`](crate::Repository::with_snapshots).
///
/// Bump [`SNAPSHOT_VERSION`](Self::SNAPSHOT_VERSION) whenever the snapshot's shape or meaning changes: snapshots
/// of another version are ignored (and replaced by the next one written), never trusted.
///
/// ```
/// use es_core::{Aggregate, DomainEvent, Snapshotting};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Clone, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// #[derive(DomainEvent)]
/// enum CounterEvent { Incremented }
///
/// impl Aggregate for Counter {
///     const CATEGORY: &'static str = "counter";
///     type Event = CounterEvent;
///     type Command = ();
///     type Error = std::convert::Infallible;
///     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
///     fn apply(mut self, _: &CounterEvent) -> Self { self.value += 1; self }
/// }
///
/// impl Snapshotting for Counter {
///     const SNAPSHOT_VERSION: u32 = 1;
///     type Snapshot = Counter;
///     fn to_snapshot(&self) -> Counter { self.clone() }
///     fn from_snapshot(snapshot: Counter) -> Self { snapshot }
/// }
///
/// let state = Counter::default().apply(&CounterEvent::Incremented);
/// assert_eq!(Counter::from_snapshot(state.to_snapshot()).value, 1);
/// ```
pub trait Snapshotting: Aggregate {
    /// The schema version of [`Snapshot`](Self::Snapshot) (1 or more).
    const SNAPSHOT_VERSION: u32;
    /// The snapshot type name; one stream can hold snapshots of several types. Defaults to the category.
    const SNAPSHOT_TYPE: &'static str = Self::CATEGORY;
    /// What is stored: the state itself, or a form of it made for storage.
    type Snapshot: Serialize + DeserializeOwned + Send;

    /// The snapshot of this state.
    fn to_snapshot(&self) -> Self::Snapshot;

    /// The state a snapshot stands for.
    fn from_snapshot(snapshot: Self::Snapshot) -> Self;
}

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
/// use es_core::{SnapshotDue, SnapshotPolicy, Version};
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
