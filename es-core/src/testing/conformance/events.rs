//! The [`EventStore`] contract as executable cases; run by
//! [`store_conformance_tests!`](crate::store_conformance_tests).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::store::{
    AppendResult, DuplicateReason, EventId, EventStore, ExpectedVersion, Metadata, NewEvent,
    Position, RecordedEvent, StoreError, StreamId, StreamRead, Version,
};

/// How long a subscription case waits for an event before it fails (a hang guard, not a performance check).
const PATIENCE: Duration = Duration::from_secs(20);

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid test stream id")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Tested", 1, json!({ "n": n }))
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

fn v(n: u64) -> Version {
    Version::new(n)
}

async fn append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    batch: Vec<NewEvent>,
) -> AppendResult {
    store
        .append(stream, expected, batch)
        .await
        .unwrap_or_else(|error| panic!("append to `{stream}` with {expected} failed: {error}"))
}

async fn all<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read_all")
}

/// `read_all` once it shows `count` events. A backend may show a committed event to `read_all` only once every
/// transaction that could still commit before it has ended (PostgreSQL's gap-free horizon), so right after an
/// append the global order can lag; it must catch up, and never show more than was written.
async fn all_settled<S: EventStore>(store: &S, count: usize) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = all(store).await;
        assert!(
            events.len() <= count,
            "read_all shows {} events, {count} were written",
            events.len()
        );
        if events.len() == count {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "read_all still shows {} of {count} events after {PATIENCE:?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn versions<S: EventStore>(store: &S, stream: &StreamId) -> Vec<u64> {
    store
        .read_stream(stream, StreamRead::forward())
        .await
        .expect("read_stream")
        .iter()
        .map(|e| e.version.get())
        .collect()
}

#[track_caller]
fn assert_conflict(
    result: Result<AppendResult, StoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: Option<Version>,
) {
    match result {
        Err(StoreError::Conflict {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(&s, stream, "conflict names the wrong stream");
            assert_eq!(e, expected, "conflict names the wrong expected version");
            assert_eq!(a, actual, "conflict names the wrong actual version");
        }
        other => panic!(
            "expected a conflict on `{stream}` ({expected}, actual {actual:?}), got {other:?}"
        ),
    }
}

#[track_caller]
fn assert_duplicate(
    result: Result<AppendResult, StoreError>,
    id: EventId,
    reason: DuplicateReason,
) {
    match result {
        Err(StoreError::DuplicateEventId {
            event_id,
            reason: r,
            ..
        }) => {
            assert_eq!(event_id, id, "duplicate error names the wrong event id");
            assert_eq!(r, reason, "duplicate error gives the wrong reason");
        }
        other => panic!("expected DuplicateEventId({id}, {reason}), got {other:?}"),
    }
}

/// `NoStream` on a new stream writes versions 1..=n.
pub async fn no_stream_creates_the_stream_at_version_one<S: EventStore>(store: S) {
    let s = stream("order-1");
    let result = append(&store, &s, ExpectedVersion::NoStream, events(0..3)).await;
    assert_eq!((result.first_version, result.last_version), (v(1), v(3)));
    assert!(!result.replayed);
    assert!(result.first_position < result.last_position);
    assert_eq!(versions(&store, &s).await, [1, 2, 3]);
}

/// `Exact(0)` is `NoStream`: it creates a stream and conflicts on an existing one.
pub async fn exact_zero_behaves_as_no_stream<S: EventStore>(store: S) {
    let s = stream("order-1");
    let expected = ExpectedVersion::Exact(Version::INITIAL);
    let result = append(&store, &s, expected, events(0..1)).await;
    assert_eq!(result.last_version, v(1));
    assert_conflict(
        store.append(&s, expected, events(1..2)).await,
        &s,
        expected,
        Some(v(1)),
    );
}

/// `NoStream` on an existing stream is a conflict naming its version.
pub async fn rejects_no_stream_when_the_stream_exists<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..2)).await;
    let result = store
        .append(&s, ExpectedVersion::NoStream, events(2..3))
        .await;
    assert_conflict(result, &s, ExpectedVersion::NoStream, Some(v(2)));
}

/// `StreamExists` on a missing stream is a conflict with no actual version, and creates nothing.
pub async fn rejects_stream_exists_when_the_stream_is_missing<S: EventStore>(store: S) {
    let s = stream("order-1");
    let result = store
        .append(&s, ExpectedVersion::StreamExists, events(0..1))
        .await;
    assert_conflict(result, &s, ExpectedVersion::StreamExists, None);
    assert!(versions(&store, &s).await.is_empty());
    // The stream is still "missing": NoStream works.
    append(&store, &s, ExpectedVersion::NoStream, events(0..1)).await;
}

/// `StreamExists` appends after the last event.
pub async fn stream_exists_appends_to_an_existing_stream<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..2)).await;
    let result = append(&store, &s, ExpectedVersion::StreamExists, events(2..4)).await;
    assert_eq!((result.first_version, result.last_version), (v(3), v(4)));
}

/// `Exact(v)` appends when the stream is at `v`.
pub async fn exact_version_appends_when_it_is_current<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..2)).await;
    let result = append(&store, &s, ExpectedVersion::Exact(v(2)), events(2..3)).await;
    assert_eq!(result.last_version, v(3));
    let result = append(&store, &s, ExpectedVersion::Exact(v(3)), events(3..5)).await;
    assert_eq!(result.last_version, v(5));
}

/// `Exact(v)` on a stream that moved past `v` (or not yet reached it) is a conflict naming the actual version.
pub async fn rejects_append_with_stale_expected_version<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..3)).await;
    for stale in [1, 2, 4] {
        let expected = ExpectedVersion::Exact(v(stale));
        assert_conflict(
            store.append(&s, expected, events(3..4)).await,
            &s,
            expected,
            Some(v(3)),
        );
    }
    assert_eq!(versions(&store, &s).await, [1, 2, 3]);
}

/// `Exact(v > 0)` on a missing stream is a conflict with no actual version, and creates nothing.
pub async fn rejects_exact_version_on_a_missing_stream<S: EventStore>(store: S) {
    let s = stream("order-1");
    let expected = ExpectedVersion::Exact(v(1));
    assert_conflict(
        store.append(&s, expected, events(0..1)).await,
        &s,
        expected,
        None,
    );
    assert!(all(&store).await.is_empty());
}

/// `Any` creates a stream and appends to an existing one.
pub async fn any_appends_to_new_and_existing_streams<S: EventStore>(store: S) {
    let s = stream("order-1");
    let first = append(&store, &s, ExpectedVersion::Any, events(0..2)).await;
    assert_eq!(first.last_version, v(2));
    let second = append(&store, &s, ExpectedVersion::Any, events(2..3)).await;
    assert_eq!((second.first_version, second.last_version), (v(3), v(3)));
}

/// An empty batch is a typed error and creates no stream.
pub async fn rejects_an_empty_batch_and_creates_nothing<S: EventStore>(store: S) {
    let s = stream("order-1");
    for expected in [ExpectedVersion::Any, ExpectedVersion::NoStream] {
        match store.append(&s, expected, Vec::new()).await {
            Err(StoreError::EmptyAppend { stream }) => assert_eq!(stream, s),
            other => panic!("expected EmptyAppend, got {other:?}"),
        }
    }
    // The stream was not created: NoStream still holds.
    append(&store, &s, ExpectedVersion::NoStream, events(0..1)).await;
}

/// A batch that fails for any reason writes none of its events, and the stream goes on from where it was.
pub async fn a_failed_batch_writes_nothing<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..2)).await;
    let before = all_settled(&store, 2).await;

    let conflict = store
        .append(&s, ExpectedVersion::Exact(v(1)), events(10..15))
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict { .. })),
        "{conflict:?}"
    );

    let mut bad = events(20..25);
    bad[3].schema_version = 0;
    let invalid = store.append(&s, ExpectedVersion::Any, bad).await;
    assert!(
        matches!(invalid, Err(StoreError::InvalidEvent { .. })),
        "{invalid:?}"
    );

    let mut repeated = events(30..33);
    repeated[2].event_id = repeated[0].event_id;
    let duplicate = store.append(&s, ExpectedVersion::Any, repeated).await;
    assert!(
        matches!(duplicate, Err(StoreError::DuplicateEventId { .. })),
        "{duplicate:?}"
    );

    assert_eq!(
        versions(&store, &s).await,
        [1, 2],
        "a failed append changed the stream"
    );
    assert_eq!(
        all_settled(&store, 2).await,
        before,
        "a failed append changed the store"
    );
    let next = append(&store, &s, ExpectedVersion::Exact(v(2)), events(2..3)).await;
    assert_eq!(next.last_version, v(3));
    assert!(next.first_position > before[1].position);
}

/// The same event id twice in one batch is a typed error.
pub async fn rejects_an_id_repeated_in_one_batch<S: EventStore>(store: S) {
    let s = stream("order-1");
    let mut batch = events(0..3);
    batch[1].event_id = batch[0].event_id;
    let id = batch[0].event_id;
    assert_duplicate(
        store.append(&s, ExpectedVersion::Any, batch).await,
        id,
        DuplicateReason::RepeatedInBatch,
    );
    assert!(all(&store).await.is_empty());
}

/// A retry of an append that succeeded (same ids, same expectation) returns the original result and writes
/// nothing, for every kind of expectation.
pub async fn retried_append_returns_the_original_result<S: EventStore>(store: S) {
    let s = stream("order-1");
    let cases = [
        (ExpectedVersion::NoStream, events(0..2)),
        (ExpectedVersion::Exact(v(2)), events(2..4)),
        (ExpectedVersion::StreamExists, events(4..5)),
        (ExpectedVersion::Any, events(5..8)),
    ];
    for (expected, batch) in cases {
        let first = append(&store, &s, expected, batch.clone()).await;
        let count = versions(&store, &s).await.len();
        let retry = append(&store, &s, expected, batch).await;
        assert!(
            retry.replayed,
            "a retry with {expected} was not marked as a replay"
        );
        assert_eq!(
            AppendResult {
                replayed: false,
                ..retry
            },
            first,
            "a retry with {expected} did not return the original versions and positions"
        );
        assert_eq!(
            versions(&store, &s).await.len(),
            count,
            "a retry with {expected} wrote events"
        );
    }
    assert_eq!(versions(&store, &s).await, (1..=8).collect::<Vec<_>>());
}

/// A retry long after the original, with other appends in between, still returns the original result.
pub async fn retried_append_is_recognised_after_later_appends<S: EventStore>(store: S) {
    let s = stream("order-1");
    let batch = events(0..3);
    let first = append(&store, &s, ExpectedVersion::NoStream, batch.clone()).await;
    append(&store, &s, ExpectedVersion::Any, events(3..10)).await;
    append(
        &store,
        &stream("order-2"),
        ExpectedVersion::Any,
        events(0..4),
    )
    .await;
    let retry = append(&store, &s, ExpectedVersion::NoStream, batch).await;
    assert!(retry.replayed);
    assert_eq!((retry.first_version, retry.last_version), (v(1), v(3)));
    assert_eq!(retry.last_position, first.last_position);
    assert_eq!(versions(&store, &s).await.len(), 10);
}

/// A retry of the leading part of an earlier batch, with the original expectation, returns that part's result.
pub async fn retried_leading_part_of_a_batch_is_a_replay<S: EventStore>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..1)).await;
    let batch = events(1..5);
    append(&store, &s, ExpectedVersion::Exact(v(1)), batch.clone()).await;
    let retry = append(
        &store,
        &s,
        ExpectedVersion::Exact(v(1)),
        batch[..2].to_vec(),
    )
    .await;
    assert!(retry.replayed);
    assert_eq!((retry.first_version, retry.last_version), (v(2), v(3)));
}

/// With `Any`, a retry of any contiguous part of an earlier batch returns that part's result.
pub async fn retried_part_of_a_batch_with_any_is_a_replay<S: EventStore>(store: S) {
    let s = stream("order-1");
    let batch = events(0..5);
    append(&store, &s, ExpectedVersion::Any, batch.clone()).await;
    let retry = append(&store, &s, ExpectedVersion::Any, batch[2..4].to_vec()).await;
    assert!(retry.replayed);
    assert_eq!((retry.first_version, retry.last_version), (v(3), v(4)));
}

/// A batch with some stored ids and some new ones is not a retry: a typed error, nothing written.
pub async fn rejects_a_batch_mixing_stored_and_new_ids<S: EventStore>(store: S) {
    let s = stream("order-1");
    let stored = events(0..2);
    append(&store, &s, ExpectedVersion::NoStream, stored.clone()).await;
    let fresh = event(2);
    let mixed = vec![stored[1].clone(), fresh.clone()];
    match store.append(&s, ExpectedVersion::Any, mixed).await {
        Err(StoreError::DuplicateEventId { reason, .. }) => {
            assert_eq!(reason, DuplicateReason::PartOfBatchStored);
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    let new_first = vec![fresh, stored[0].clone()];
    assert_duplicate(
        store.append(&s, ExpectedVersion::Any, new_first).await,
        stored[0].event_id,
        DuplicateReason::PartOfBatchStored,
    );
    assert_eq!(versions(&store, &s).await, [1, 2]);
}

/// An id stored in one stream cannot be appended to another.
pub async fn rejects_an_event_id_stored_in_another_stream<S: EventStore>(store: S) {
    let (a, b) = (stream("order-1"), stream("order-2"));
    let batch = events(0..1);
    append(&store, &a, ExpectedVersion::Any, batch.clone()).await;
    assert_duplicate(
        store.append(&b, ExpectedVersion::Any, batch.clone()).await,
        batch[0].event_id,
        DuplicateReason::StoredInOtherStream(a),
    );
    assert!(versions(&store, &b).await.is_empty());
}

/// Stored ids sent with an expectation that holds now but could not have written them where they are: a
/// duplicate.
pub async fn rejects_a_retry_whose_expectation_does_not_fit<S: EventStore>(store: S) {
    let s = stream("order-1");
    let batch = events(0..2);
    append(&store, &s, ExpectedVersion::NoStream, batch.clone()).await;
    append(&store, &s, ExpectedVersion::Any, events(2..4)).await;
    let id = batch[0].event_id;
    for expected in [ExpectedVersion::Exact(v(4)), ExpectedVersion::StreamExists] {
        assert_duplicate(
            store.append(&s, expected, batch.clone()).await,
            id,
            DuplicateReason::StoredAtOtherVersion(v(1)),
        );
    }
    let reversed = vec![batch[1].clone(), batch[0].clone()];
    match store.append(&s, ExpectedVersion::Any, reversed).await {
        Err(StoreError::DuplicateEventId {
            reason: DuplicateReason::StoredAtOtherVersion(_),
            ..
        }) => {}
        other => panic!("a batch in another order than stored must be refused, got {other:?}"),
    }
    assert_eq!(versions(&store, &s).await.len(), 4);
}

/// A stale append that is no retry is a conflict, whatever ids it reuses: the caller reloads and decides again.
pub async fn a_stale_append_reusing_ids_is_a_conflict<S: EventStore>(store: S) {
    let s = stream("order-1");
    let stored = events(0..2);
    append(&store, &s, ExpectedVersion::NoStream, stored.clone()).await;
    let conflict = |result: Result<AppendResult, StoreError>, expected, actual| match result {
        Err(StoreError::Conflict {
            expected: e,
            actual: a,
            ..
        }) if e == expected && a == Some(v(actual)) => {}
        other => panic!("expected a conflict ({expected}, actual {actual}), got {other:?}"),
    };
    let mut longer = stored.clone();
    longer.push(event(2));
    conflict(
        store.append(&s, ExpectedVersion::NoStream, longer).await,
        ExpectedVersion::NoStream,
        2,
    );
    append(&store, &s, ExpectedVersion::Any, events(3..7)).await;
    let resent = vec![stored[0].clone()];
    conflict(
        store.append(&s, ExpectedVersion::Exact(v(4)), resent).await,
        ExpectedVersion::Exact(v(4)),
        6,
    );
    let mixed = vec![stored[1].clone(), event(9)];
    conflict(
        store.append(&s, ExpectedVersion::Exact(v(2)), mixed).await,
        ExpectedVersion::Exact(v(2)),
        6,
    );
    assert_eq!(versions(&store, &s).await.len(), 6);
}

/// Several clients retrying the same batch at once: one writes it, every other gets the same result as a replay.
pub async fn concurrent_retries_of_one_batch_write_it_once<S: EventStore + Clone + 'static>(
    store: S,
) {
    let s = stream("order-1");
    let batch = events(0..3);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, s, batch) = (store.clone(), s.clone(), batch.clone());
            tokio::spawn(async move { store.append(&s, ExpectedVersion::Any, batch).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task").expect("every retry succeeds"));
    }
    assert_eq!(
        results.iter().filter(|r| !r.replayed).count(),
        1,
        "{results:?}"
    );
    let first = results[0];
    assert!(
        results
            .iter()
            .all(|r| (r.first_version, r.last_version, r.last_position)
                == (first.first_version, first.last_version, first.last_position)),
        "{results:?}"
    );
    assert_eq!(versions(&store, &s).await, [1, 2, 3]);
}

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

/// A subscription returns the stored events first, then events appended after it started, in order.
pub async fn subscribe_all_catches_up_then_goes_live<S: EventStore + Clone + 'static>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..3)).await;
    let mut subscription = store.subscribe_all(Position::START);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut subscription).await);
    }
    let writer = {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            for i in 3..8 {
                append(&store, &s, ExpectedVersion::Exact(v(i)), events(i..i + 1)).await;
            }
        })
    };
    for _ in 3..8 {
        seen.push(next(&mut subscription).await);
    }
    writer.await.expect("writer");
    assert_eq!(
        seen.iter().map(|e| e.version.get()).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
}

/// A subscription from a position returns only the events after it.
pub async fn subscribe_all_starts_after_the_given_position<S: EventStore>(store: S) {
    let s = stream("order-1");
    let first = append(&store, &s, ExpectedVersion::NoStream, events(0..2)).await;
    append(&store, &s, ExpectedVersion::Any, events(2..3)).await;
    let mut subscription = store.subscribe_all(first.last_position);
    assert_eq!(next(&mut subscription).await.version, v(3));
}

/// A filtered subscription hands over only the selected events, in global order, each once, and its pages say how
/// far they read: past the events it does not select, up to the last one written, live as well.
pub async fn subscribe_filtered_selects_by_category_and_type_and_moves_past_the_rest<
    S: EventStore + Clone + 'static,
>(
    store: S,
) {
    let typed = |t: &'static str, n: u64| NewEvent::new(t, 1, json!({ "n": n }));
    let mut selected = Vec::new();
    let mut last = Position::START;
    for n in 0..30u64 {
        let (name, t) = match n % 3 {
            0 => ("light-1", "SwitchedOn"),
            1 => ("door-1", "SwitchedOn"),
            _ => ("light-2", "Dimmed"),
        };
        let written = append(
            &store,
            &stream(name),
            ExpectedVersion::Any,
            vec![typed(t, n)],
        )
        .await;
        last = written.last_position;
        if n % 3 == 0 {
            selected.push(written.last_position);
        }
    }
    let filter = crate::store::FeedFilter::all()
        .with_categories(&["light"])
        .only_types(&["SwitchedOn"]);
    let mut feed = store.subscribe_filtered(Position::START, filter.clone());
    let mut seen = Vec::new();
    let mut through = Position::START;
    while through < last {
        let batch = next_batch(&mut feed).await;
        assert!(batch.through > through, "a page must move on");
        assert!(batch.events.iter().all(|e| e.position <= batch.through));
        through = batch.through;
        seen.extend(batch.events.iter().map(|e| e.position));
    }
    assert_eq!(seen, selected);
    // Live: an unselected event moves the feed on, a selected one comes through.
    let door = append(
        &store,
        &stream("door-1"),
        ExpectedVersion::Any,
        vec![typed("SwitchedOn", 99)],
    )
    .await;
    let light = append(
        &store,
        &stream("light-3"),
        ExpectedVersion::Any,
        vec![typed("SwitchedOn", 100)],
    )
    .await;
    let mut live = Vec::new();
    while through < light.last_position {
        let batch = next_batch(&mut feed).await;
        through = batch.through;
        live.extend(batch.events.iter().map(|e| e.position));
    }
    assert!(door.last_position < light.last_position);
    assert_eq!(live, vec![light.last_position]);
    // From a position: only what follows it.
    let mut later = store.subscribe_filtered(selected[5], filter);
    assert_eq!(next_batch(&mut later).await.events[0].position, selected[6]);
    // By partition: each event in the one partition `partition_of` names, every event in one of them.
    for name in ["p-1", "p-2", "p-3", "p-4", "p-5", "p-6", "p-7", "p-8"] {
        last = append(
            &store,
            &stream(name),
            ExpectedVersion::Any,
            vec![typed("Dimmed", 0)],
        )
        .await
        .last_position;
    }
    let mut partitioned = 0;
    for partition in 0..4 {
        let mut feed = store.subscribe_filtered(
            Position::START,
            crate::store::FeedFilter::all().partition(partition, 4),
        );
        let mut through = Position::START;
        while through < last {
            let batch = next_batch(&mut feed).await;
            through = batch.through;
            for event in &batch.events {
                assert_eq!(
                    crate::store::partition_of(event.stream_id.as_str(), 4),
                    partition
                );
                partitioned += 1;
            }
        }
    }
    assert_eq!(partitioned, all(&store).await.len());
}

async fn next_batch(feed: &mut crate::store::FeedStream) -> crate::store::FeedBatch {
    match tokio::time::timeout(PATIENCE, feed.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(error))) => panic!("filtered subscription failed: {error}"),
        Ok(None) => panic!("filtered subscription ended"),
        Err(_) => panic!("no page from the filtered subscription within {PATIENCE:?}"),
    }
}

async fn next(subscription: &mut crate::store::EventStream) -> RecordedEvent {
    match tokio::time::timeout(PATIENCE, subscription.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("subscription failed: {error}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no event from the subscription within {PATIENCE:?}"),
    }
}

/// Of several appends racing with the same `Exact(v)`, exactly one wins; the others conflict, naming the winner's
/// version, and write nothing.
pub async fn racing_exact_appends_have_exactly_one_winner<S: EventStore + Clone + 'static>(
    store: S,
) {
    for round in 0..5u64 {
        let s = stream(&format!("race-{round}"));
        append(&store, &s, ExpectedVersion::NoStream, events(0..round + 1)).await;
        let expected = ExpectedVersion::Exact(v(round + 1));
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let (store, s) = (store.clone(), s.clone());
                tokio::spawn(async move {
                    store
                        .append(&s, expected, events(task * 100..task * 100 + 2))
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => wins += 1,
                Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, Some(v(round + 3))),
                Err(other) => panic!("a racing append failed with {other}"),
            }
        }
        assert_eq!(
            wins, 1,
            "round {round}: {wins} appends with the same expected version won"
        );
        assert_eq!(versions(&store, &s).await.len() as u64, round + 3);
    }
}

/// Concurrent `Any` appends to one stream all succeed, each batch contiguous, versions 1..=n without gaps.
pub async fn concurrent_any_appends_to_one_stream_all_land_in_order<
    S: EventStore + Clone + 'static,
>(
    store: S,
) {
    let s = stream("order-1");
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                for i in 0..10 {
                    let batch = events(task * 1000 + i * 10..task * 1000 + i * 10 + 1 + i % 3);
                    results.push(append(&store, &s, ExpectedVersion::Any, batch).await);
                }
                results
            })
        })
        .collect();
    let mut claimed = HashSet::new();
    for task in tasks {
        for result in task.await.expect("task") {
            for version in result.first_version.get()..=result.last_version.get() {
                assert!(claimed.insert(version), "version {version} written twice");
            }
        }
    }
    let stored = versions(&store, &s).await;
    assert_eq!(stored, (1..=stored.len() as u64).collect::<Vec<_>>());
    assert_eq!(claimed.len(), stored.len());
}
