//! Snapshotting aggregates: a state that can be stored, so loads fold only the events after it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aggregate::Aggregate;

/// An aggregate whose state can be stored as a snapshot, so that loading it folds only the events after the
/// snapshot. Opt in per aggregate; turn it on with [`Repository::with_snapshots`](crate::Repository::with_snapshots).
///
/// Bump [`SNAPSHOT_VERSION`](Self::SNAPSHOT_VERSION) whenever the snapshot's shape or meaning changes: snapshots
/// of another version are ignored (and replaced by the next one written), never trusted.
///
/// ```
/// use es_core::{Aggregate, DomainEvent};
/// use es_core::aggregate::Snapshotting;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Clone, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// #[derive(DomainEvent)]
/// #[event(aggregate = Counter)]
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
