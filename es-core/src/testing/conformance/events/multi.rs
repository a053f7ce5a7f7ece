//! Multi-stream appends: all or nothing, every failed expectation named, retries, racing single appends.

use crate::store::{
    DuplicateReason, EventStore, ExpectedVersion, MultiAppend, StoreError, StreamConflict,
};

use super::{append, event, events, stream, v, versions};

/// A multi-stream append writes every stream, consecutively in the global order; one whose expectation fails on
/// two streams (one written, one only checked) writes nothing and names both with their actual versions.
pub async fn a_multi_append_writes_every_stream_or_none<S: EventStore>(store: S) {
    let (a, b, c) = (stream("multi-a"), stream("multi-b"), stream("multi-c"));
    append(&store, &c, ExpectedVersion::NoStream, events(0..2)).await;
    let written = store
        .append_multi(
            MultiAppend::new()
                .append(a.clone(), ExpectedVersion::NoStream, events(10..12))
                .append(b.clone(), ExpectedVersion::NoStream, events(20..21))
                .check(c.clone(), ExpectedVersion::Exact(v(2))),
        )
        .await
        .expect("a multi-stream append whose expectations hold");
    assert_eq!(written.len(), 2);
    assert_eq!(
        (written[0].first_version, written[0].last_version),
        (v(1), v(2))
    );
    assert_eq!(
        (written[1].first_version, written[1].last_version),
        (v(1), v(1))
    );
    assert!(written[0].last_position < written[1].first_position);
    assert!(written.iter().all(|r| !r.replayed));

    let refused = store
        .append_multi(
            MultiAppend::new()
                .append(a.clone(), ExpectedVersion::Exact(v(2)), events(30..31))
                .append(b.clone(), ExpectedVersion::NoStream, events(40..41))
                .check(c.clone(), ExpectedVersion::Exact(v(1))),
        )
        .await;
    match refused {
        Err(StoreError::Conflicts { mut conflicts }) => {
            conflicts.sort_by(|x, y| x.stream.as_str().cmp(y.stream.as_str()));
            assert_eq!(
                conflicts,
                [
                    StreamConflict {
                        stream: b.clone(),
                        expected: ExpectedVersion::NoStream,
                        actual: Some(v(1)),
                    },
                    StreamConflict {
                        stream: c.clone(),
                        expected: ExpectedVersion::Exact(v(1)),
                        actual: Some(v(2)),
                    },
                ]
            );
        }
        other => panic!("expected the two conflicts, got {other:?}"),
    }
    assert_eq!(
        versions(&store, &a).await.len(),
        2,
        "nothing written to `multi-a`"
    );
    assert_eq!(versions(&store, &b).await.len(), 1);
}

/// The same multi-stream append again (same event ids) is a retry: the original results, nothing written twice;
/// reusing some of its ids in a new multi-stream append is refused.
pub async fn a_retried_multi_append_is_a_replay<S: EventStore>(store: S) {
    let (a, b) = (stream("retry-a"), stream("retry-b"));
    let transfer = MultiAppend::new()
        .append(a.clone(), ExpectedVersion::NoStream, events(0..2))
        .append(b.clone(), ExpectedVersion::NoStream, events(2..3));
    let first = store.append_multi(transfer.clone()).await.expect("first");
    let again = store.append_multi(transfer.clone()).await.expect("retry");
    assert!(again.iter().all(|r| r.replayed));
    assert_eq!(
        again
            .iter()
            .map(|r| (r.first_version, r.last_position))
            .collect::<Vec<_>>(),
        first
            .iter()
            .map(|r| (r.first_version, r.last_position))
            .collect::<Vec<_>>()
    );
    assert_eq!(versions(&store, &a).await.len(), 2);
    let reused = MultiAppend::new()
        .append(
            a.clone(),
            ExpectedVersion::Any,
            transfer.appends()[0].events.clone(),
        )
        .append(stream("retry-c"), ExpectedVersion::Any, vec![event(9)]);
    assert!(matches!(
        store.append_multi(reused).await,
        Err(StoreError::DuplicateEventId {
            reason: DuplicateReason::PartOfBatchStored,
            ..
        })
    ));
    assert!(versions(&store, &stream("retry-c")).await.is_empty());
}

/// Nothing to append, or a stream named twice, is refused before anything is written.
pub async fn a_malformed_multi_append_is_refused<S: EventStore>(store: S) {
    assert!(matches!(
        store
            .append_multi(MultiAppend::new().check(stream("m-x"), ExpectedVersion::Any))
            .await,
        Err(StoreError::NothingToAppend)
    ));
    let twice = MultiAppend::new()
        .append(stream("m-x"), ExpectedVersion::Any, events(0..1))
        .append(stream("m-x"), ExpectedVersion::Any, events(1..2));
    assert!(matches!(
        store.append_multi(twice).await,
        Err(StoreError::StreamRepeated { .. })
    ));
    assert!(versions(&store, &stream("m-x")).await.is_empty());
}

/// Multi-stream appends on two streams race single appends on each of them, all with the same expected versions:
/// either one multi-stream append wins both streams, or single appends win them; never a stream written twice or
/// a multi-stream append written in part. Every loser is a typed conflict.
pub async fn racing_multi_and_single_appends_never_write_in_part<
    S: EventStore + Clone + 'static,
>(
    store: S,
) {
    for round in 0..10u64 {
        let (a, b) = (
            stream(&format!("mr-a{round}")),
            stream(&format!("mr-b{round}")),
        );
        append(&store, &a, ExpectedVersion::NoStream, events(0..1)).await;
        append(&store, &b, ExpectedVersion::NoStream, events(0..1)).await;
        let at = ExpectedVersion::Exact(v(1));
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let (store, a, b) = (store.clone(), a.clone(), b.clone());
                tokio::spawn(async move {
                    let batch = || events(task * 10 + 100..task * 10 + 101);
                    match task % 4 {
                        0 | 1 => store
                            .append_multi(MultiAppend::new().append(a, at, batch()).append(
                                b,
                                at,
                                batch(),
                            ))
                            .await
                            .map(|_| ()),
                        2 => store.append(&a, at, batch()).await.map(|_| ()),
                        _ => store.append(&b, at, batch()).await.map(|_| ()),
                    }
                })
            })
            .collect();
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) | Err(StoreError::Conflict { .. } | StoreError::Conflicts { .. }) => {}
                Err(other) => panic!("a racing append failed with {other}"),
            }
        }
        let (ours_a, ours_b) = (versions(&store, &a).await, versions(&store, &b).await);
        assert_eq!(
            (ours_a.len(), ours_b.len()),
            (2, 2),
            "round {round}: each stream won once"
        );
        let last = |stream: &crate::store::StreamId| {
            let store = store.clone();
            let stream = stream.clone();
            async move {
                store
                    .read_stream(&stream, crate::store::StreamRead::backward().limit(1))
                    .await
                    .expect("read")
                    .remove(0)
                    .payload
            }
        };
        let (pa, pb) = (last(&a).await, last(&b).await);
        let multi = |p: &serde_json::Value| p["n"].as_u64().is_some_and(|n| (n - 100) / 10 % 4 < 2);
        assert_eq!(
            multi(&pa),
            multi(&pb),
            "round {round}: a multi-stream append was written to one stream only"
        );
        if multi(&pa) {
            assert_eq!(
                pa, pb,
                "round {round}: two multi-stream appends split the streams"
            );
        }
    }
}
