//! The SQLite store's traps, handled on purpose (WAL, synchronous=FULL, a writer of another connection waited for,
//! not reported), its live feed across connections sharing the file, and a transactional projection under
//! concurrent writers, rebuilt and reopened; rows that do not read back, named in their place.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::projection::ProjectionOptions;
use es_core::{EventStore, ExpectedVersion, NewEvent, Position, ProjectionRunner, StreamId};
use es_sqlite::{SqliteEventStore, SqliteProjectionWorker};
use futures::StreamExt;
use sqlx::{Connection, SqliteConnection};
use tests::fresh_sqlite_path;
use tests::ledger::{LedgerEvent, Totals};
use tests::sqlite_ledger::SqliteLedger;

fn posting(amount: i64) -> NewEvent {
    NewEvent::from_domain(&LedgerEvent::Posted { amount }, Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_in_wal_mode_with_full_sync_and_waits_for_another_writer() {
    let path = fresh_sqlite_path();
    let store = SqliteEventStore::open(&path).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.readers())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.writer())
        .await
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");

    // Another connection (as another process would) holds the write lock for 300 ms: the append waits for it.
    let mut other = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    });
    let started = std::time::Instant::now();
    let stream = StreamId::new("ledger-1").unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![posting(1)])
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the other writer"
    );
    holder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_sees_appends_of_another_store_on_the_same_file() {
    let path = fresh_sqlite_path();
    let reader = SqliteEventStore::builder()
        .poll_interval(Duration::from_millis(20))
        .open(&path)
        .await
        .unwrap();
    let writer = SqliteEventStore::open(&path).await.unwrap();
    let mut feed = reader.subscribe_all(Position::START);
    for n in 1..=20 {
        let stream = StreamId::new(format!("ledger-{}", n % 3)).unwrap();
        writer
            .append(&stream, ExpectedVersion::Any, vec![posting(n)])
            .await
            .unwrap();
    }
    let mut last = Position::START;
    for _ in 0..20 {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("delivered within 10 s")
            .unwrap()
            .unwrap();
        assert!(event.position > last, "increasing positions");
        last = event.position;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transactional_projection_keeps_up_with_eight_writers_and_rebuilds() {
    let path = fresh_sqlite_path();
    let store = SqliteEventStore::open(&path).await.unwrap();
    let ledger = SqliteLedger::create(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(SqliteProjectionWorker::new(
            &store,
            ledger.clone(),
            ProjectionOptions::default().batch_size(50),
        ))
        .start();
    let writers: Vec<_> = (0..8)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut last = Position::START;
                for n in 0..50 {
                    // Each task writes its own stream and a shared one.
                    let name = if n % 2 == 0 {
                        format!("ledger-own{task}")
                    } else {
                        "ledger-shared".to_owned()
                    };
                    let stream = StreamId::new(&name).unwrap();
                    last = store
                        .append(&stream, ExpectedVersion::Any, vec![posting(1)])
                        .await
                        .unwrap()
                        .last_position;
                }
                last
            })
        })
        .collect();
    let mut last = Position::START;
    for writer in writers {
        last = last.max(writer.await.unwrap());
    }
    running
        .wait_for("ledger", last, Duration::from_secs(30))
        .await
        .unwrap();
    let mut expected = Totals::default();
    for (stream, n) in (0..8)
        .map(|t| (format!("ledger-own{t}"), 25))
        .chain(std::iter::once(("ledger-shared".to_owned(), 200)))
    {
        expected.totals.insert(stream.clone(), n);
        expected.counts.insert(stream, n);
    }
    assert_eq!(
        ledger.totals(&store).await,
        expected,
        "every event applied exactly once"
    );

    assert_eq!(ledger.applied(&store).await, 400);

    running.rebuild("ledger").await.unwrap();
    running
        .wait_for("ledger", last, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        ledger.totals(&store).await,
        expected,
        "a rebuild gives the same read model"
    );
    running.shutdown().await;

    // Reopened: the history and the checkpoint are there.
    drop(store);
    let again = SqliteEventStore::open(&path).await.unwrap();
    assert_eq!(again.head().await.unwrap(), Some(last));
    assert_eq!(
        es_core::projection::CheckpointStore::load_checkpoint(&again, "ledger")
            .await
            .unwrap(),
        Some(last)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_do_not_read_back_are_named_in_their_place_and_read_past() {
    let store = tests::sqlite_store().await;
    let stream = StreamId::new("ledger-1").unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![posting(1), posting(2)])
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, created_at)
           VALUES ('ledger-2', 1, randomblob(16), 'Posted', 1, 'not json', '{}', 0);
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, created_at)
           VALUES ('ledger-3', 1, randomblob(16), 'Posted', 1, '{\"amount\": 1}', '[1, 2]', 0);
         INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, created_at)
           VALUES ('', 1, randomblob(16), 'Posted', 1, '{\"amount\": 1}', '{}', 0);",
    )
    .execute(store.writer())
    .await
    .unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![posting(3)])
        .await
        .unwrap();

    let first = store.read_all(Position::START, 100).await.unwrap();
    assert_eq!(
        first.len(),
        2,
        "the page stops before the first corrupt row"
    );
    let mut after = first[1].position;
    let mut found = Vec::new();
    for _ in 0..3 {
        match store.read_all(after, 100).await {
            Err(es_core::StoreError::Corrupt(bad)) => {
                assert!(bad.position > after);
                assert_eq!(bad.event_type, "Posted");
                after = bad.position;
                found.push((bad.stream.clone(), bad.reason.clone()));
            }
            other => panic!("expected a corrupt row, got {other:?}"),
        }
    }
    assert_eq!(found[0].0, "ledger-2");
    assert!(found[0].1.contains("payload"), "{}", found[0].1);
    assert_eq!(found[1].0, "ledger-3");
    assert!(found[1].1.contains("metadata"), "{}", found[1].1);
    assert!(found[2].1.contains("stream id"), "{}", found[2].1);
    assert_eq!(store.read_all(after, 100).await.unwrap().len(), 1);

    // The live feed reports each one and goes on.
    let mut feed = store.subscribe_all(Position::START);
    let (mut good, mut bad) = (0, 0);
    while good + bad < 6 {
        match tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed stalled")
        {
            Some(Ok(_)) => good += 1,
            Some(Err(es_core::StoreError::Corrupt(_))) => bad += 1,
            other => panic!("the feed ended: {other:?}"),
        }
    }
    assert_eq!((good, bad), (3, 3));
}

#[tokio::test]
async fn a_batch_of_several_statements_is_replayed_whole_or_refused_whole() {
    let store = tests::sqlite_store().await;
    let stream = StreamId::new("ledger-big").unwrap();
    let batch: Vec<NewEvent> = (0..450).map(posting).collect();
    let first = store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(
        (first.first_version.get(), first.last_version.get()),
        (1, 450)
    );
    assert_eq!(
        first.last_position.prepare - first.first_position.prepare,
        449
    );
    let again = store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.first_position, again.last_position),
        (first.first_position, first.last_position)
    );

    // 449 fresh events and, last (in the third statement), one id stored already: nothing is written.
    let mut mixed: Vec<NewEvent> = (0..449).map(posting).collect();
    mixed.push(batch[7].clone());
    match store.append(&stream, ExpectedVersion::Any, mixed).await {
        Err(es_core::StoreError::DuplicateEventId { event_id, .. }) => {
            assert_eq!(event_id, batch[7].event_id)
        }
        other => panic!("expected a duplicate id, got {other:?}"),
    }
    assert_eq!(store.count_after(Position::START).await.unwrap(), 450);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_holding_the_file_past_the_busy_timeout_is_a_typed_error_then_the_store_goes_on() {
    let path = fresh_sqlite_path();
    let store = SqliteEventStore::builder()
        .busy_timeout(Duration::from_millis(200))
        .open(&path)
        .await
        .unwrap();
    let mut other = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let stream = StreamId::new("ledger-1").unwrap();
    let started = std::time::Instant::now();
    match store
        .append(&stream, ExpectedVersion::NoStream, vec![posting(1)])
        .await
    {
        Err(es_core::StoreError::Backend { operation, source }) => {
            assert_eq!(operation, "append");
            assert!(source.to_string().contains("locked"), "{source}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    // The busy timeout, then as long again: not a hang.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![posting(1)])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_faster_durability_is_synchronous_normal() {
    let store = SqliteEventStore::builder()
        .durability(es_sqlite::Durability::Normal)
        .open(fresh_sqlite_path())
        .await
        .unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.writer())
        .await
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_into_backs_up_a_store_in_use() {
    let store = tests::sqlite_store().await;
    let stream = StreamId::new("ledger-1").unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![posting(1), posting(2)])
        .await
        .unwrap();
    let backup = fresh_sqlite_path();
    // While a subscriber reads and before the next append: the store stays open.
    let _feed = store.subscribe_all(Position::START);
    sqlx::query("VACUUM INTO ?1")
        .bind(backup.display().to_string())
        .execute(store.writer())
        .await
        .unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![posting(3)])
        .await
        .unwrap();
    let copy = SqliteEventStore::open(&backup).await.unwrap();
    let ids = |events: Vec<es_core::RecordedEvent>| {
        events.into_iter().map(|e| e.event_id).collect::<Vec<_>>()
    };
    let original = ids(store.read_all(Position::START, 10).await.unwrap());
    assert_eq!(
        ids(copy.read_all(Position::START, 10).await.unwrap()),
        original[..2]
    );
}
