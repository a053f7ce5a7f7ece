//! The same event limits on every store, as typed errors naming the event, checked before anything is written:
//! payload size, type names (length, control characters), U+0000 in strings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::store::EventLimits;
use es_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId, StreamRead};
use es_memory::InMemoryEventStore;
use serde_json::json;
use tests::{fresh_sqlite_path, pg_store, pg_store_with, sqlite_store};

/// Each case: an event that every store must refuse, and a word the reason must hold.
fn refused() -> Vec<(NewEvent, &'static str)> {
    vec![
        (
            NewEvent::new(
                "Written",
                1,
                json!({ "text": "x".repeat(17 * 1024 * 1024) }),
            ),
            "bytes of JSON",
        ),
        (
            NewEvent::new("Bad\0Type", 1, json!({})),
            "control character",
        ),
        (NewEvent::new("T".repeat(3_000), 1, json!({})), "3000 bytes"),
        (
            NewEvent::new("Noted", 1, json!({ "text": "nul \u{0} here" })),
            "U+0000",
        ),
        (
            NewEvent::new("Noted", 1, json!({}))
                .with_metadata(es_core::Metadata::new().with("note", "nul \u{0} here")),
            "U+0000",
        ),
    ]
}

async fn refuses_each_and_writes_nothing<S: EventStore>(store: &S) {
    let stream = StreamId::new("doc-1").unwrap();
    for (event, reason_word) in refused() {
        let good = NewEvent::new("Noted", 1, json!({}));
        let id = event.event_id;
        match store
            .append(&stream, ExpectedVersion::Any, vec![good, event])
            .await
        {
            Err(StoreError::InvalidEvent {
                event_id, reason, ..
            }) => {
                assert_eq!(event_id, id);
                assert!(reason.contains(reason_word), "{reason}");
            }
            other => panic!("expected InvalidEvent ({reason_word}), got {other:?}"),
        }
    }
    let stored = store
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    assert!(
        stored.is_empty(),
        "a refused batch wrote {} events",
        stored.len()
    );
}

#[tokio::test]
async fn the_in_memory_store_refuses_what_postgresql_cannot_store() {
    refuses_each_and_writes_nothing(&InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn postgresql_refuses_the_same_events_with_the_same_typed_errors() {
    refuses_each_and_writes_nothing(&pg_store().await).await;
}

#[tokio::test]
async fn sqlite_refuses_the_same_events_with_the_same_typed_errors() {
    refuses_each_and_writes_nothing(&sqlite_store().await).await;
}

#[tokio::test]
async fn a_configured_size_limit_holds_on_every_store() {
    let limits = EventLimits::default().max_event_bytes(64 * 1024);
    let big = || NewEvent::new("Noted", 1, json!({ "text": "x".repeat(100_000) }));
    let small = || NewEvent::new("Noted", 1, json!({ "text": "x".repeat(1_000) }));
    let stream = StreamId::new("doc-1").unwrap();
    let memory = InMemoryEventStore::with_limits(limits);
    let postgres = pg_store_with(es_postgres::PgEventStore::builder().limits(limits)).await;
    let sqlite = es_sqlite::SqliteEventStore::builder()
        .limits(limits)
        .open(fresh_sqlite_path())
        .await
        .unwrap();
    for store in [&memory as &dyn EventStore, &postgres, &sqlite] {
        assert!(matches!(
            store
                .append(&stream, ExpectedVersion::Any, vec![big()])
                .await,
            Err(StoreError::InvalidEvent { .. })
        ));
        store
            .append(&stream, ExpectedVersion::Any, vec![small()])
            .await
            .unwrap();
    }
}
