//! Snapshots shorten loads and are never trusted blindly; temporal loads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use es_core::aggregate::{AsOf, Snapshot, SnapshotPolicy, SnapshotStore};
use es_core::store::EventStream;
use es_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, Repository,
    StoreError, StreamId, StreamRead, Version,
};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand};
use tests::pg_store;

/// The in-memory store, counting the events its stream reads return.
#[derive(Clone, Default)]
struct Counting {
    inner: InMemoryEventStore,
    events_read: Arc<AtomicUsize>,
}

#[async_trait]
impl EventStore for Counting {
    async fn append(
        &self,
        s: &StreamId,
        e: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<es_core::store::AppendResult, StoreError> {
        self.inner.append(s, e, events).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.inner.read_stream(s, read).await?;
        self.events_read.fetch_add(events.len(), Ordering::Relaxed);
        Ok(events)
    }
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    fn subscribe_all(&self, after: Position) -> EventStream {
        self.inner.subscribe_all(after)
    }
}

#[async_trait]
impl SnapshotStore for Counting {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, s: &StreamId, t: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(s, t).await
    }
}

fn open() -> AccountCommand {
    AccountCommand::Open {
        owner: "Ada".into(),
    }
}

fn deposit() -> AccountCommand {
    AccountCommand::Deposit { amount: 1 }
}

#[tokio::test]
async fn a_10_000_event_stream_with_a_snapshot_every_100_loads_by_reading_at_most_100_events() {
    let store = Counting::default();
    let accounts = Repository::<Account, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::every(100));
    accounts
        .execute("a", &open(), Metadata::new())
        .await
        .unwrap();
    for _ in 1..10_050 {
        accounts
            .execute("a", &deposit(), Metadata::new())
            .await
            .unwrap();
    }
    // Snapshots are written in the background; a repository without the cache loads as another process would.
    accounts.flush_snapshots().await;
    store.events_read.store(0, Ordering::Relaxed);
    let loaded = accounts.clone().with_cache(0).load("a").await.unwrap();
    let read = store.events_read.load(Ordering::Relaxed);
    assert_eq!(
        (loaded.version.get(), loaded.state.balance),
        (10_050, 10_049)
    );
    assert_eq!(loaded.snapshot, Some(Version::new(10_000)));
    assert!(read <= 100, "loading read {read} events");

    // Without snapshots, the same load reads every event.
    store.events_read.store(0, Ordering::Relaxed);
    let plain = Repository::<Account, _>::new(store.clone())
        .load("a")
        .await
        .unwrap();
    assert_eq!(plain.state, loaded.state);
    assert_eq!(store.events_read.load(Ordering::Relaxed), 10_050);
}

/// A snapshot store that fails every call.
struct Broken;

#[async_trait]
impl SnapshotStore for Broken {
    async fn save_snapshot(&self, _: Snapshot) -> Result<(), StoreError> {
        Err(StoreError::Backend {
            operation: "save_snapshot",
            source: "disk full".into(),
        })
    }
    async fn load_snapshot(&self, _: &StreamId, _: &str) -> Result<Option<Snapshot>, StoreError> {
        Err(StoreError::Backend {
            operation: "load_snapshot",
            source: "disk full".into(),
        })
    }
}

#[tokio::test]
async fn a_failing_snapshot_store_never_fails_a_command_or_a_load() {
    let accounts = Repository::<Account, _>::new(InMemoryEventStore::new())
        .with_snapshots(Broken, SnapshotPolicy::every(1));
    accounts
        .execute("a", &open(), Metadata::new())
        .await
        .unwrap();
    accounts
        .execute("a", &deposit(), Metadata::new())
        .await
        .unwrap();
    let loaded = accounts.load("a").await.unwrap();
    assert_eq!((loaded.state.balance, loaded.snapshot), (1, None));
}

#[tokio::test]
async fn snapshots_that_do_not_decode_or_are_of_another_version_are_ignored() {
    let store = InMemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::Never);
    accounts
        .execute("a", &open(), Metadata::new())
        .await
        .unwrap();
    accounts
        .execute("a", &deposit(), Metadata::new())
        .await
        .unwrap();
    let stream = StreamId::new("account-a").unwrap();
    let forged = |schema_version, state| Snapshot {
        stream_id: stream.clone(),
        snapshot_type: "account".into(),
        schema_version,
        version: Version::new(2),
        state,
    };
    store
        .save_snapshot(forged(1, serde_json::json!({ "balance": "lots" })))
        .await
        .unwrap();
    let loaded = accounts.load("a").await.unwrap();
    assert_eq!(
        (loaded.state.balance, loaded.snapshot),
        (1, None),
        "an undecodable snapshot was trusted"
    );

    let looks_fine =
        serde_json::json!({ "owner": "Mallory", "balance": 1_000_000, "closed": false });
    store.save_snapshot(forged(9, looks_fine)).await.unwrap();
    let loaded = accounts.load("a").await.unwrap();
    assert_eq!(
        (loaded.state.balance, loaded.snapshot),
        (1, None),
        "a snapshot of another version was trusted"
    );
}

#[tokio::test]
async fn snapshots_work_on_postgres_and_loads_read_only_the_tail() {
    let store = pg_store().await;
    let accounts = Repository::<Account, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::every(10));
    accounts
        .execute("a", &open(), Metadata::new())
        .await
        .unwrap();
    for _ in 0..24 {
        accounts
            .execute("a", &deposit(), Metadata::new())
            .await
            .unwrap();
    }
    accounts.flush_snapshots().await;
    let loaded = accounts.clone().with_cache(0).load("a").await.unwrap();
    assert_eq!(
        (loaded.version.get(), loaded.state.balance, loaded.snapshot),
        (25, 24, Some(Version::new(20)))
    );
}

#[tokio::test]
async fn loads_the_state_as_of_a_version_or_a_time() {
    let store = InMemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::every(2));
    accounts
        .execute("a", &open(), Metadata::new())
        .await
        .unwrap();
    for _ in 0..5 {
        accounts
            .execute("a", &deposit(), Metadata::new())
            .await
            .unwrap();
    }
    let at_3 = accounts
        .load_as_of("a", AsOf::Version(Version::new(3)))
        .await
        .unwrap();
    assert_eq!((at_3.version.get(), at_3.state.balance), (3, 2));
    assert!(at_3.snapshot.is_none_or(|v| v <= Version::new(3)));
    let beyond = accounts
        .load_as_of("a", AsOf::Version(Version::new(99)))
        .await
        .unwrap();
    assert_eq!(beyond.version.get(), 6);
    let before_anything = accounts
        .load_as_of("a", AsOf::Version(Version::INITIAL))
        .await
        .unwrap();
    assert_eq!(before_anything.state, Account::default());

    let stream = StreamId::new("account-a").unwrap();
    let events = store
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    let cut = events[3].recorded_at;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    accounts
        .execute("a", &deposit(), Metadata::new())
        .await
        .unwrap();
    let then = accounts.load_as_of("a", AsOf::Time(cut)).await.unwrap();
    assert!(
        then.version.get() >= 4 && then.version.get() <= 6,
        "{}",
        then.version
    );
    assert_eq!(then.state.balance, then.version.get() - 1);
    let now = accounts.load("a").await.unwrap();
    assert_eq!(now.version.get(), 7);
    let ancient = accounts
        .load_as_of(
            "a",
            AsOf::Time(events[0].recorded_at - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert_eq!(ancient.version, Version::INITIAL);
}
