//! The [`SnapshotStore`] contract as executable cases; run by
//! [`snapshot_store_conformance_tests!`](crate::snapshot_store_conformance_tests).

use serde_json::json;

use crate::aggregate::snapshot::{Snapshot, SnapshotStore};
use crate::store::{StoreError, StreamId, Version};

fn snapshot(stream: &str, snapshot_type: &str, schema_version: u32, version: u64) -> Snapshot {
    Snapshot {
        stream_id: StreamId::new(stream).expect("valid test stream id"),
        snapshot_type: snapshot_type.to_owned(),
        schema_version,
        version: Version::new(version),
        state: json!({ "at": version, "schema": schema_version, "text": "ünïcødé" }),
    }
}

async fn load<S: SnapshotStore>(store: &S, stream: &str, snapshot_type: &str) -> Option<Snapshot> {
    let stream = StreamId::new(stream).expect("valid test stream id");
    store
        .load_snapshot(&stream, snapshot_type)
        .await
        .expect("load_snapshot")
}

/// A stream never snapshotted loads `None`.
pub async fn loads_nothing_for_a_stream_without_snapshot<S: SnapshotStore>(store: S) {
    assert_eq!(load(&store, "account-1", "account").await, None);
}

/// What is saved loads back unchanged.
pub async fn saves_and_loads_a_snapshot<S: SnapshotStore>(store: S) {
    let saved = snapshot("account-1", "account", 3, 10);
    store.save_snapshot(saved.clone()).await.expect("save");
    assert_eq!(load(&store, "account-1", "account").await, Some(saved));
}

/// A snapshot at a higher version replaces the stored one.
pub async fn a_newer_snapshot_replaces_an_older_one<S: SnapshotStore>(store: S) {
    store
        .save_snapshot(snapshot("account-1", "account", 1, 10))
        .await
        .expect("save");
    let newer = snapshot("account-1", "account", 1, 20);
    store.save_snapshot(newer.clone()).await.expect("save");
    assert_eq!(load(&store, "account-1", "account").await, Some(newer));
}

/// A snapshot at a lower or equal version of the same schema is ignored, without error.
pub async fn an_older_snapshot_never_replaces_a_newer_one<S: SnapshotStore>(store: S) {
    let newer = snapshot("account-1", "account", 1, 20);
    store.save_snapshot(newer.clone()).await.expect("save");
    store
        .save_snapshot(snapshot("account-1", "account", 1, 10))
        .await
        .expect("an older save is not an error");
    let mut same_version = snapshot("account-1", "account", 1, 20);
    same_version.state = json!("other");
    store.save_snapshot(same_version).await.expect("save");
    assert_eq!(load(&store, "account-1", "account").await, Some(newer));
}

/// A snapshot of another state schema version replaces the stored one whatever its stream version (a deploy
/// that changed the state's shape starts over).
pub async fn a_snapshot_of_another_schema_version_replaces_the_stored_one<S: SnapshotStore>(
    store: S,
) {
    store
        .save_snapshot(snapshot("account-1", "account", 1, 50))
        .await
        .expect("save");
    let bumped = snapshot("account-1", "account", 2, 10);
    store.save_snapshot(bumped.clone()).await.expect("save");
    assert_eq!(load(&store, "account-1", "account").await, Some(bumped));
}

/// Streams and snapshot types do not share snapshots.
pub async fn snapshots_are_kept_per_stream_and_type<S: SnapshotStore>(store: S) {
    let a = snapshot("account-1", "account", 1, 5);
    let b = snapshot("account-2", "account", 1, 7);
    let c = snapshot("account-1", "audit", 1, 9);
    for s in [&a, &b, &c] {
        store.save_snapshot(s.clone()).await.expect("save");
    }
    assert_eq!(load(&store, "account-1", "account").await, Some(a));
    assert_eq!(load(&store, "account-2", "account").await, Some(b));
    assert_eq!(load(&store, "account-1", "audit").await, Some(c));
    assert_eq!(load(&store, "account-2", "audit").await, None);
}

/// An empty type, a schema version of 0 or a version of 0 is a typed error and stores nothing.
pub async fn rejects_an_invalid_snapshot<S: SnapshotStore>(store: S) {
    for bad in [
        snapshot("account-1", "", 1, 5),
        snapshot("account-1", "account", 0, 5),
        snapshot("account-1", "account", 1, 0),
    ] {
        match store.save_snapshot(bad.clone()).await {
            Err(StoreError::InvalidSnapshot { stream, .. }) => assert_eq!(stream, bad.stream_id),
            other => panic!("expected InvalidSnapshot for {bad:?}, got {other:?}"),
        }
    }
    assert_eq!(load(&store, "account-1", "account").await, None);
}
