//! Stored rows that do not read back (a payload serde cannot read, metadata of the wrong shape, an empty stream
//! id): each is a typed error in its place in the global order, never a stalled feed. Raw reads name it and read on
//! past it; projections apply their failure policy to it; a projection that would not have read it skips it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::projection::{FailurePolicy, ProjectionOptions, ProjectionState};
use es_core::{EventStore, Position, ProjectionRunner, StoreError, StreamId, StreamRead, Version};
use es_postgres::{PgEventStore, PgProjectionWorker};
use futures::StreamExt;
use tests::ledger::{MemoryLedger, PgLedger, Totals, post};
use tests::{execute_in_schema, pg_store};

const WAIT: Duration = Duration::from_secs(30);

/// Ten good postings, the three corrupt rows, a bad row of another category, ten good postings; returns the totals
/// of the good ones and the last position.
async fn store_with_corrupt_rows() -> (PgEventStore, Totals, Position) {
    let store = pg_store().await;
    let (mut expected, _) = post(&store, "acct", 10, 1, 5).await;
    execute_in_schema(
        &store,
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) VALUES
           ('acct-2', 1, gen_random_uuid(), 'Posted', 1, '{\"amount\": 1e400}', '{}');
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) VALUES
           ('acct-3', 1, gen_random_uuid(), 'Posted', 1, '{\"amount\": 1}', '[1, 2]');
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) VALUES
           ('', 1, gen_random_uuid(), 'Posted', 1, '{\"amount\": 1}', '{}');
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) VALUES
           ('parcel-1', 1, gen_random_uuid(), 'Posted', 1, '{\"amount\": 1e400}', '{}');",
    )
    .await;
    let (more, last) = post(&store, "acct", 10, 1, 5).await;
    for (stream, total) in more.totals {
        *expected.totals.entry(stream.clone()).or_default() += total;
        *expected.counts.entry(stream.clone()).or_default() += more.counts[&stream];
    }
    // Another test's open transaction on the shared server may hold the feed back for a moment: wait until all 24
    // rows are in the global order.
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.count_after(Position::START).await.unwrap() < 24 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rows never became visible"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (store, expected, last)
}

fn corrupt(
    result: Result<Vec<es_core::RecordedEvent>, StoreError>,
) -> Box<es_core::store::CorruptEvent> {
    match result {
        Err(StoreError::Corrupt(corrupt)) => corrupt,
        other => panic!("expected a corrupt event, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_reads_name_each_corrupt_row_in_its_place_and_read_on_past_it() {
    let (store, _, _) = store_with_corrupt_rows().await;
    let first = store.read_all(Position::START, 100).await.unwrap();
    assert_eq!(
        first.len(),
        10,
        "the page stops before the first corrupt row"
    );
    let mut after = first[9].position;
    let mut found = Vec::new();
    for _ in 0..4 {
        let bad = corrupt(store.read_all(after, 100).await);
        assert!(bad.position > after);
        assert_eq!(
            (bad.version, bad.event_type.as_str()),
            (Version::new(1), "Posted")
        );
        after = bad.position;
        found.push((bad.stream.clone(), bad.reason.clone()));
    }
    assert_eq!(found[0].0, "acct-2");
    assert!(found[0].1.contains("payload"), "{}", found[0].1);
    assert_eq!(found[1].0, "acct-3");
    assert!(found[1].1.contains("metadata"), "{}", found[1].1);
    assert_eq!(found[2].0, "");
    assert!(found[2].1.contains("stream id"), "{}", found[2].1);
    assert_eq!(found[3].0, "parcel-1");
    assert_eq!(store.read_all(after, 100).await.unwrap().len(), 10);

    let error = store
        .read_stream(&StreamId::new("acct-2").unwrap(), StreamRead::forward())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("acct-2") && text.contains("@1") && text.contains("position"),
        "{text}"
    );

    // The live feed reports each one and goes on.
    let mut feed = store.subscribe_all(Position::START);
    let (mut good, mut bad) = (0, 0);
    while good + bad < 24 {
        match tokio::time::timeout(WAIT, feed.next())
            .await
            .expect("the feed stalled")
        {
            Some(Ok(_)) => good += 1,
            Some(Err(StoreError::Corrupt(_))) => bad += 1,
            other => panic!("the feed ended: {other:?}"),
        }
    }
    assert_eq!((good, bad), (20, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_projection_halts_on_a_corrupt_row_naming_stream_version_and_position() {
    let (store, _, _) = store_with_corrupt_rows().await;
    let ledger = PgLedger::create(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(
            &store,
            ledger.clone(),
            ProjectionOptions::default(),
        ))
        .start();
    let deadline = tokio::time::Instant::now() + WAIT;
    let error = loop {
        if let ProjectionState::Failed { error } = running.state("ledger").unwrap() {
            break error;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projection did not halt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        error.contains("acct-2@1") && error.contains("position") && error.contains("corrupt"),
        "{error}"
    );
    assert_eq!(
        ledger.applied(&store).await,
        10,
        "the events before it are applied"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettering_projection_parks_each_corrupt_row_and_goes_on() {
    let (store, expected, last) = store_with_corrupt_rows().await;
    let ledger = MemoryLedger::named("ledger");
    let categories = MemoryLedger::named("acct-only").reading(&["acct"]);
    let options = ProjectionOptions::default().on_failure(FailurePolicy::DeadLetter);
    let running = ProjectionRunner::new(store.clone())
        .with_projection(ledger.clone(), store.clone(), options.clone())
        .with_projection(categories.clone(), store.clone(), options)
        .start();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    running.wait_for("acct-only", last, WAIT).await.unwrap();
    assert_eq!(ledger.totals(), expected);
    assert_eq!(categories.totals(), expected);
    let letters = running.dead_letters("ledger").await.unwrap();
    let streams: Vec<&str> = letters.iter().map(|l| l.stream_id.as_str()).collect();
    assert_eq!(streams, ["acct-2", "acct-3", "", "parcel-1"]);
    assert!(letters.iter().all(|l| l.error.contains("corrupt")));
    // A projection of the `acct` category only is not concerned by the `parcel` row or the one without a stream.
    let letters = running.dead_letters("acct-only").await.unwrap();
    let streams: Vec<&str> = letters.iter().map(|l| l.stream_id.as_str()).collect();
    assert_eq!(streams, ["acct-2", "acct-3"]);
    let status = running.status("ledger").await.unwrap();
    assert_eq!((status.lag_events, status.dead_letters), (0, 4));
    assert_eq!(
        running.redrive("ledger").await.unwrap(),
        (0, 4),
        "still corrupt"
    );
    running.shutdown().await;
}
