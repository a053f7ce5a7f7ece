//! Reads: streams forward and backward, the global order, and what comes back.

use std::collections::HashMap;

use serde_json::json;
use uuid::Uuid;

use crate::store::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, StreamId, StreamRead,
    Version,
};

use super::{all_settled, append, event, events, stream, v, versions};

/// Appends to one stream never change another.
pub async fn streams_are_isolated<S: EventStore>(store: S) {
    let (a, b) = (stream("order-1"), stream("order-10"));
    append(&store, &a, ExpectedVersion::NoStream, events(0..3)).await;
    let result = append(&store, &b, ExpectedVersion::NoStream, events(0..1)).await;
    assert_eq!(result.last_version, v(1));
    append(&store, &a, ExpectedVersion::Exact(v(3)), events(3..4)).await;
    assert_eq!(versions(&store, &a).await, [1, 2, 3, 4]);
    assert_eq!(versions(&store, &b).await, [1]);
    let in_b = store
        .read_stream(&b, StreamRead::forward())
        .await
        .expect("read");
    assert!(in_b.iter().all(|e| e.stream_id == b));
}

/// Forward reads start at the given version and stop at the limit.
pub async fn reads_a_stream_forward_from_a_version_with_a_limit<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..10)).await;
    let read = |r| store.read_stream(&s, r);
    let got = read(StreamRead::forward().from(v(4)).limit(3))
        .await
        .expect("read");
    assert_eq!(
        got.iter().map(|e| e.version.get()).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(got[0].payload, json!({ "n": 3 }));
    let tail = read(StreamRead::forward().from(v(9))).await.expect("read");
    assert_eq!(tail.len(), 2);
    assert!(
        read(StreamRead::forward().from(v(11)))
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        read(StreamRead::forward().limit(0))
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        read(StreamRead::forward().from(Version::INITIAL))
            .await
            .expect("read")
            .len(),
        10
    );
}

/// Backward reads return newest first, from the end or from a version.
pub async fn reads_a_stream_backward<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..5)).await;
    let read = |r| store.read_stream(&s, r);
    let numbers =
        |events: Vec<RecordedEvent>| events.iter().map(|e| e.version.get()).collect::<Vec<_>>();
    assert_eq!(
        numbers(read(StreamRead::backward()).await.expect("read")),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(
        numbers(read(StreamRead::backward().limit(1)).await.expect("read")),
        [5]
    );
    assert_eq!(
        numbers(
            read(StreamRead::backward().from(v(3)).limit(2))
                .await
                .expect("read")
        ),
        [3, 2]
    );
    assert_eq!(
        numbers(
            read(StreamRead::backward().from(v(99)).limit(2))
                .await
                .expect("read")
        ),
        [5, 4]
    );
}

/// A stream that was never written reads as empty, in both directions.
pub async fn reads_a_missing_stream_as_empty<S: EventStore>(store: S) {
    let s = stream("nothing-here");
    assert!(
        store
            .read_stream(&s, StreamRead::forward())
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .read_stream(&s, StreamRead::backward())
            .await
            .expect("read")
            .is_empty()
    );
}

/// `read_all` returns every event exactly once, positions strictly increasing, paged by position and limit.
pub async fn read_all_returns_every_event_once_in_global_order<S: EventStore>(store: S) {
    let mut appended = Vec::new();
    for i in 0..12u64 {
        let s = stream(&format!("order-{}", i % 3));
        let result = append(
            &store,
            &s,
            ExpectedVersion::Any,
            events(i * 10..i * 10 + 1 + i % 2),
        )
        .await;
        appended.push(result);
    }
    let everything = all_settled(&store, 18).await;
    assert!(
        everything.windows(2).all(|w| w[0].position < w[1].position),
        "positions must increase"
    );
    assert_eq!(
        everything.last().map(|e| e.position),
        appended.last().map(|r| r.last_position)
    );

    let mut paged = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 5).await.expect("read_all");
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = last.position;
        paged.extend(page);
    }
    assert_eq!(
        paged, everything,
        "paging by position must return the same events"
    );
    assert!(
        store
            .read_all(Position::START, 0)
            .await
            .expect("read_all")
            .is_empty()
    );
    let after_seventh = store
        .read_all(everything[6].position, usize::MAX)
        .await
        .expect("read_all");
    assert_eq!(after_seventh, everything[7..]);
}

/// In the global order, each stream's events come in version order.
pub async fn read_all_keeps_each_stream_in_version_order<S: EventStore>(store: S) {
    for i in 0..20u64 {
        let s = stream(&format!("order-{}", i % 4));
        append(&store, &s, ExpectedVersion::Any, events(0..1 + i % 3)).await;
    }
    let mut last: HashMap<StreamId, u64> = HashMap::new();
    for e in all_settled(&store, 39).await {
        let previous = last
            .insert(e.stream_id.clone(), e.version.get())
            .unwrap_or(0);
        assert_eq!(
            e.version.get(),
            previous + 1,
            "{} out of order in read_all",
            e.stream_id
        );
    }
}

/// What goes in comes out: id, type, schema version, payload, metadata; positions match the append's result.
pub async fn events_round_trip_type_schema_version_payload_and_metadata<S: EventStore>(store: S) {
    let s = stream("order-1");
    let correlation = Uuid::now_v7();
    let metadata = Metadata::new()
        .with_correlation_id(correlation)
        .with_causation_id(Uuid::nil())
        .with_occurred_at(chrono::DateTime::UNIX_EPOCH)
        .with("tenant", "acme")
        .with("nested", json!({ "a": [1, 2, { "b": null }] }));
    let payload = json!({ "text": "ünïcødé \u{1F600} \"quoted\"", "big": 9_007_199_254_740_993_u64, "f": 1.5, "list": [] });
    let sent =
        NewEvent::new("Order.Placed/v2 name", 7, payload.clone()).with_metadata(metadata.clone());
    let result = append(
        &store,
        &s,
        ExpectedVersion::NoStream,
        vec![sent.clone(), event(1)],
    )
    .await;
    let read = store
        .read_stream(&s, StreamRead::forward())
        .await
        .expect("read");
    let got = &read[0];
    assert_eq!(got.stream_id, s);
    assert_eq!(got.version, v(1));
    assert_eq!(got.event_id, sent.event_id);
    assert_eq!(got.event_type, "Order.Placed/v2 name");
    assert_eq!(got.schema_version, 7);
    assert_eq!(got.payload, payload);
    assert_eq!(got.metadata, metadata);
    assert_eq!(got.position, result.first_position);
    assert_eq!(read[1].position, result.last_position);
    assert_eq!(read[1].metadata, Metadata::new());
    let age = chrono::Utc::now() - got.recorded_at;
    assert!(
        age.num_seconds().abs() < 3600,
        "recorded_at is not the time of the append: {}",
        got.recorded_at
    );
    assert_eq!(
        all_settled(&store, 2).await,
        read,
        "read_all and read_stream return the same events"
    );
}
