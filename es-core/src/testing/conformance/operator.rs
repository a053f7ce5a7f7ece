//! The [`OperatorStore`] contract as executable cases; run by
//! [`operator_store_conformance_tests!`](crate::operator_store_conformance_tests).

use serde_json::json;

use super::events::all_settled;
use crate::control::OperatorStore;
use crate::store::{ExpectedVersion, NewEvent, Position, StreamId};

async fn write<S: OperatorStore>(store: &S, stream: &str, events: usize) {
    let stream = StreamId::new(stream).expect("valid test stream id");
    let batch = (0..events)
        .map(|n| NewEvent::new("Happened", 1, json!({ "n": n })))
        .collect();
    store
        .append(&stream, ExpectedVersion::Any, batch)
        .await
        .expect("append");
}

/// Streams are listed by id, filtered by category, paged with `after` and `limit`, with their versions.
pub async fn lists_streams_by_category_in_pages<S: OperatorStore>(store: S) {
    write(&store, "order-2", 2).await;
    write(&store, "order-1", 1).await;
    write(&store, "invoice-1", 3).await;
    write(&store, "order-3", 1).await;
    let all = store.streams(None, None, 10).await.expect("streams");
    let ids: Vec<&str> = all.iter().map(|s| s.stream_id.as_str()).collect();
    assert_eq!(ids, ["invoice-1", "order-1", "order-2", "order-3"]);
    assert_eq!(all[0].version, 3, "invoice-1 has three events: {all:?}");
    assert!(all.iter().all(|s| s.created_at <= s.updated_at), "{all:?}");
    let orders = store
        .streams(Some("order"), None, 2)
        .await
        .expect("streams");
    let ids: Vec<&str> = orders.iter().map(|s| s.stream_id.as_str()).collect();
    assert_eq!(ids, ["order-1", "order-2"]);
    let rest = store
        .streams(Some("order"), Some("order-2"), 2)
        .await
        .expect("streams");
    let ids: Vec<&str> = rest.iter().map(|s| s.stream_id.as_str()).collect();
    assert_eq!(ids, ["order-3"], "the page after order-2");
    assert!(
        store
            .streams(Some("refund"), None, 10)
            .await
            .expect("streams")
            .is_empty()
    );
}

/// `before_newest(n)` is the position after which exactly the `n` newest events are; the start when there are
/// `n` or fewer.
pub async fn before_newest_leaves_the_newest_events<S: OperatorStore>(store: S) {
    assert_eq!(
        store.before_newest(3).await.expect("before_newest"),
        Position::START
    );
    write(&store, "tail-1", 5).await;
    let all = all_settled(&store, 5).await;
    let after = store.before_newest(2).await.expect("before_newest");
    let newest = store.read_all(after, 10).await.expect("read_all");
    assert_eq!(newest, all[3..], "the two newest events");
    assert_eq!(
        store.before_newest(5).await.expect("before_newest"),
        Position::START
    );
    assert_eq!(
        store.before_newest(9).await.expect("before_newest"),
        Position::START
    );
}

/// A migrated store is current and says where it is.
pub async fn a_migrated_store_is_current_and_has_a_location<S: OperatorStore>(store: S) {
    store.migrate().await.expect("migrate");
    let status = store.migration_status().await.expect("migration_status");
    assert!(status.is_current(), "{status:?}");
    assert!(status.unknown.is_empty(), "{status:?}");
    assert!(!store.location().is_empty());
}
