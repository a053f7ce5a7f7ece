//! Snapshots: an aggregate's folded state stored at a stream version, so loads fold only the events after it.
//!
//! | file | concept |
//! |---|---|
//! | `stored.rs` | [`Snapshot`], the stored form, and [`SnapshotStore`], what backends implement |
//! | `snapshotting.rs` | [`Snapshotting`]: an aggregate opts in by saying how its state becomes a snapshot |
//! | `policy.rs` | [`SnapshotPolicy`]: when the repository writes one ([`SnapshotDue`] is what it decides on) |
//! | `writer.rs` | how the repository reads and writes them (not public) |
//!
//! See [`Repository::with_snapshots`](crate::Repository::with_snapshots) for turning them on, and the
//! [`aggregate`](crate::aggregate) overview for when writes happen.
//!
//! ```
//! use es_core::aggregate::{SnapshotPolicy, SnapshotStore, Snapshotting};
//! use es_core::{Aggregate, DomainEvent, Metadata, Repository, StreamId};
//! use es_memory::InMemoryEventStore;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Clone, Serialize, Deserialize)]
//! struct Counter { value: u64 }
//!
//! #[derive(DomainEvent)]
//! #[event(aggregate = Counter)]
//! enum CounterEvent { Incremented }
//!
//! impl Aggregate for Counter {
//!     const CATEGORY: &'static str = "counter";
//!     type Event = CounterEvent;
//!     type Command = ();
//!     type Error = std::convert::Infallible;
//!     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
//!     fn apply(mut self, _: &CounterEvent) -> Self { self.value += 1; self }
//! }
//!
//! impl Snapshotting for Counter {
//!     const SNAPSHOT_VERSION: u32 = 1;
//!     type Snapshot = Counter;
//!     fn to_snapshot(&self) -> Counter { self.clone() }
//!     fn from_snapshot(snapshot: Counter) -> Self { snapshot }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let counters = Repository::<Counter, _>::new(store.clone()).with_snapshots(store.clone(), SnapshotPolicy::every(2));
//! for _ in 0..3 {
//!     counters.execute("a", &(), Metadata::new()).await?;
//! }
//! counters.flush_snapshots().await; // writes run in the background; wait for them here
//! let snapshot = store.load_snapshot(&StreamId::new("counter-a")?, "counter").await?;
//! assert_eq!(snapshot.map(|s| s.version.get()), Some(2));
//! assert_eq!(counters.load("a").await?.state.value, 3); // snapshot at 2, then one event
//! # Ok(()) }
//! ```

mod policy;
mod snapshotting;
pub(crate) mod store;
pub(crate) mod writer;

pub use policy::{SnapshotDue, SnapshotPolicy};
pub use snapshotting::Snapshotting;
pub use store::{Snapshot, SnapshotStore};
