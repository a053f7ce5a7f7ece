//! Aggregates: pure deciders, the repository that runs commands on them, and snapshots.
//!
//! An [`Aggregate`] decides new events from a command ([`handle`](Aggregate::handle), pure, no I/O) and folds its
//! events into state ([`apply`](Aggregate::apply)). Its events live in the stream `{CATEGORY}-{id}`.
//!
//! The [`Repository`] runs commands: [`execute`](Repository::execute) loads the aggregate (from its cache, or the
//! newest [`Snapshot`] and the events after it), decides, and appends with the version it decided on; when another
//! writer got there first, it loads again and decides again ([`RepositoryError::TooManyConflicts`] after a bounded
//! number of attempts). [`Executed`] carries the new state and the append's positions, for read-your-writes.
//!
//! Snapshots are opt-in per aggregate ([`Snapshotting`]) and written by [`SnapshotPolicy`]. A snapshot write is
//! started after the command's append and **not awaited**: `execute` answers as soon as the events are stored, the
//! write runs in the background (at most a few at a time per repository; one that cannot start is skipped and
//! logged), and [`Repository::flush_snapshots`] waits for those in flight. A snapshot is only a shortcut: one that
//! is missing, of another [`SNAPSHOT_VERSION`](Snapshotting::SNAPSHOT_VERSION) or undecodable is ignored and the
//! events are folded instead.
//!
//! ```
//! use es_core::aggregate::{Aggregate, Repository, RepositoryError};
//! use es_core::{DomainEvent, Metadata};
//! use es_memory::InMemoryEventStore;
//!
//! #[derive(Default, Clone)]
//! struct Counter { value: u64 }
//!
//! #[derive(DomainEvent)]
//! #[event(aggregate = Counter)]
//! enum CounterEvent { Added { by: u64 } }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("adding 0 changes nothing")]
//! struct Pointless;
//!
//! impl Aggregate for Counter {
//!     const CATEGORY: &'static str = "counter";
//!     type Event = CounterEvent;
//!     type Command = u64;
//!     type Error = Pointless;
//!     fn handle(&self, by: &u64) -> Result<Vec<CounterEvent>, Pointless> {
//!         if *by == 0 { return Err(Pointless) }
//!         Ok(vec![CounterEvent::Added { by: *by }])
//!     }
//!     fn apply(mut self, CounterEvent::Added { by }: &CounterEvent) -> Self { self.value += by; self }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counters = Repository::<Counter, _>::new(InMemoryEventStore::new());
//! let done = counters.execute("a", &5, Metadata::new()).await?;
//! assert_eq!((done.state.value, done.version.get()), (5, 1));
//! assert!(done.position().is_some()); // where the event landed in the global order
//! assert!(matches!(counters.execute("a", &0, Metadata::new()).await, Err(RepositoryError::Rejected { .. })));
//! # Ok(()) }
//! ```

mod command_ids;
mod decider;
mod decision;
mod repository;
pub mod snapshot;

pub use command_ids::event_id_for;
pub use decider::Aggregate;
pub(crate) use decider::{lists_category, valid_category};
pub use decision::{Decided, DecisionError, DecisionModel, Decisions};
pub use repository::{
    AsOf, DEFAULT_CACHE_CAPACITY, Executed, ExecutedMany, Loaded, Repository, RepositoryError,
};
pub use snapshot::{Snapshot, SnapshotDue, SnapshotPolicy, SnapshotStore, Snapshotting};
