//! An operator's reads after the server dropped every connection of the pool (backends terminated, a failover):
//! each read fails once per dead pooled connection, inside, and is answered on a new one, as the store's own reads
//! are. `es serve` answered 500 to most API reads for a while: its control-plane reads did not retry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::control::OperatorStore;
use es_core::control::{ControlStore, Operator, ProjectionReport};
use es_core::projection::DeadLetterStore;
use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use es_postgres::PgEventStore;
use tests::private_pg::PrivatePostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reads_answer_after_every_backend_was_terminated() {
    let server = PrivatePostgres::start();
    let store = server.store().await;
    let stream = StreamId::new("acct-1").unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("Opened", 1, serde_json::json!({}))],
        )
        .await
        .unwrap();
    let report = ProjectionReport {
        projection: "ledger".into(),
        instance: "a".into(),
        state: "running".into(),
        detail: None,
        checkpoint: None,
        last_event_at: None,
        reported_at: chrono::Utc::now(),
    };
    store.report(std::slice::from_ref(&report)).await.unwrap();
    let operator = Operator::new(store.clone());

    for round in 0..3 {
        // Fill the pool with idle connections, then have the server drop them all.
        let warm = (0..4).map(|_| operator.projections());
        for read in futures::future::join_all(warm).await {
            read.unwrap();
        }
        assert!(server.terminate_all(None).await > 0, "round {round}");
        let overview = operator
            .projections()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(overview[0].name, "ledger");
        store.paused().await.unwrap();
        store.reports().await.unwrap();
        store.dead_letters("ledger").await.unwrap();
        operator.dead_letters("ledger").await.unwrap();
        assert_eq!(store.streams(None, None, 10).await.unwrap().len(), 1);
        store.before_newest(1).await.unwrap();
        store.report(std::slice::from_ref(&report)).await.unwrap();
    }
}

/// One event per append to `acct-1`, for each of `numbers`.
async fn post(store: &PgEventStore, numbers: std::ops::Range<u32>) {
    let stream = StreamId::new("acct-1").unwrap();
    for n in numbers {
        let event = NewEvent::new("Posted", 1, serde_json::json!({ "n": n }));
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
}

/// An operator's count reads at most `count_cap` events: up to it exact, past it estimated from positions (which
/// also count an identity value a rolled-back append used), so a status or a metrics sample costs the same however
/// far behind a projection is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_are_exact_up_to_the_cap_and_estimated_from_positions_past_it() {
    let capped = tests::pg_store_with(PgEventStore::builder().count_cap(10)).await;
    post(&capped, 0..12).await;
    // An append that rolls back leaves a gap in the positions.
    let mut tx = capped.pool().begin().await.unwrap();
    tests::append_in_open_transaction(&mut tx, &capped, "acct-2", 0).await;
    tx.rollback().await.unwrap();
    post(&capped, 12..25).await;
    let start = es_core::Position::START;
    assert_eq!(
        capped.count_after(start).await.unwrap(),
        26,
        "25 events and the gap: an estimate"
    );
    let events = capped.read_all(start, 100).await.unwrap();
    assert_eq!(
        capped.count_after(events[19].position).await.unwrap(),
        5,
        "under the cap: exact"
    );

    let exact = PgEventStore::builder()
        .schema(capped.schema().as_str())
        .build(capped.pool().clone())
        .unwrap();
    assert_eq!(
        exact.count_after(start).await.unwrap(),
        25,
        "under the default cap: exact"
    );
}
