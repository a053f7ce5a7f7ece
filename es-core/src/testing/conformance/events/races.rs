//! Concurrent writers: one winner of racing expectations, concurrent `Any` appends in order.

use std::collections::HashSet;

use crate::store::{EventStore, ExpectedVersion, StoreError};

use super::{append, events, stream, v, versions};

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
