//! Failed batches and retries: all or nothing, replays recognised by event id, duplicates refused.

use crate::store::{AppendResult, DuplicateReason, EventStore, ExpectedVersion, StoreError};

use super::{all, all_settled, append, assert_duplicate, event, events, stream, v, versions};

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
