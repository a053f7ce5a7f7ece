//! Snapshots: written in the background when the policy says one is due, read by loads.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{Repository, SNAPSHOT_WRITES};
use crate::aggregate::Aggregate;
use crate::aggregate::snapshot::writer::StoreSnapshotter;
use crate::aggregate::snapshot::{SnapshotDue, SnapshotPolicy, SnapshotStore, Snapshotting};
use crate::store::{EventStore, StreamId};

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Writes a snapshot of `state` in the background when the policy says one is due; `true` when one was
    /// started. At most [`SNAPSHOT_WRITES`] are in flight; past that a due snapshot is skipped with a warning
    /// (the next due one is written instead): a snapshot never delays or fails a command.
    pub(super) async fn snapshot_after(
        &self,
        stream: &StreamId,
        state: &A,
        due: SnapshotDue,
    ) -> bool {
        let Some(snapshots) = &self.snapshots else {
            return false;
        };
        let Some(snapshot) = snapshots.prepare(stream, state, &due) else {
            return false;
        };
        let Ok(permit) = Arc::clone(&self.snapshot_writes).try_acquire_owned() else {
            tracing::warn!(%stream, version = %due.version, "snapshot skipped: {SNAPSHOT_WRITES} snapshot writes are still in flight");
            return false;
        };
        let snapshots = Arc::clone(snapshots);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    snapshots.save(snapshot).await;
                    drop(permit);
                });
            }
            Err(_) => snapshots.save(snapshot).await,
        }
        true
    }

    /// Waits until every snapshot write started so far has finished (tests, and a graceful shutdown).
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository, StreamId};
    /// # use es_core::aggregate::{SnapshotPolicy, SnapshotStore, Snapshotting};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)] struct Counter(u64);
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter"; type Event = CounterEvent; type Command = ();
    /// #     type Error = std::convert::Infallible;
    /// #     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
    /// #     fn apply(self, _: &CounterEvent) -> Self { Counter(self.0 + 1) }
    /// # }
    /// # impl Snapshotting for Counter {
    /// #     const SNAPSHOT_TYPE: &'static str = "counter"; const SNAPSHOT_VERSION: u32 = 1; type Snapshot = Counter;
    /// #     fn to_snapshot(&self) -> Counter { self.clone() }
    /// #     fn from_snapshot(s: Counter) -> Self { s }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = InMemoryEventStore::new();
    /// let counters = Repository::<Counter, _>::new(store.clone()).with_snapshots(store.clone(), SnapshotPolicy::every(1));
    /// counters.execute("a", &(), Metadata::new()).await?;
    /// counters.flush_snapshots().await;
    /// assert!(store.load_snapshot(&StreamId::new("counter-a")?, "counter").await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn flush_snapshots(&self) {
        let all = u32::try_from(SNAPSHOT_WRITES).unwrap_or(u32::MAX);
        // Closed never: the semaphore lives as long as the repository.
        let _ = self.snapshot_writes.acquire_many(all).await;
    }
}

impl<A: Snapshotting, S: EventStore> Repository<A, S> {
    /// Loads from snapshots in `snapshot_store` (the newest one whose schema version is
    /// [`A::SNAPSHOT_VERSION`](Snapshotting::SNAPSHOT_VERSION)), and writes one after `execute` when `policy` says
    /// so. Often the event store itself: `repository.with_snapshots(store.clone(), SnapshotPolicy::every(100))`.
    pub fn with_snapshots(
        mut self,
        snapshot_store: impl SnapshotStore + 'static,
        policy: SnapshotPolicy,
    ) -> Self {
        self.snapshots = Some(Arc::new(StoreSnapshotter {
            store: snapshot_store,
            policy,
            aggregate: PhantomData,
        }));
        self
    }
}
