//! Expected versions: what each expectation creates, appends to, and refuses.

use crate::store::{EventStore, ExpectedVersion, StoreError, Version};

use super::{all, append, assert_conflict, events, stream, v, versions};

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
