//! PostgreSQL-specific behaviour: bad stored data, identifiers, racing writers, migrations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::aggregate::RepositoryError;
use es_core::store::DecodeError;
use es_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Position, Repository, StoreError, StreamId,
    StreamRead, Version,
};
use es_postgres::{PgEventStore, PgSetupError};
use examples::bank::{Account, AccountCommand};
use serde_json::json;
use tests::{database_url, execute_in_schema, fresh_schema, pg_store};

#[tokio::test]
async fn stored_rows_that_do_not_decode_are_typed_errors_naming_stream_version_and_position() {
    let store = pg_store().await;
    let accounts = Repository::<Account, _>::new(store.clone());
    accounts
        .execute(
            "x",
            &AccountCommand::Open {
                owner: "Ada".into(),
            },
            Metadata::new(),
        )
        .await
        .unwrap();
    // What an old release, or a hand-written fix, might have left behind.
    execute_in_schema(
        &store,
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload) \
         VALUES ('account-x', 2, gen_random_uuid(), 'Teleported', 1, '{\"to\": \"Mars\"}')",
    )
    .await;
    let error = accounts.load("x").await.unwrap_err();
    let RepositoryError::Decode(decode) = &error else {
        panic!("expected a decode error, got {error:?}")
    };
    assert_eq!(decode.stream.as_str(), "account-x");
    assert_eq!(decode.version, Version::new(2));
    assert!(decode.position > Position::START);
    assert!(
        matches!(&decode.source, DecodeError::UnknownType { event_type, .. } if event_type == "Teleported")
    );
    assert!(
        error
            .to_string()
            .contains(&format!("account-x@2 (position {}", decode.position)),
        "{error}"
    );

    execute_in_schema(
        &store,
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload) \
         VALUES ('account-y', 1, gen_random_uuid(), 'Opened', 2, '{\"owner\": [1, 2]}')",
    )
    .await;
    let error = accounts.load("y").await.unwrap_err();
    assert!(
        matches!(&error, RepositoryError::Decode(e) if e.version == Version::new(1)
            && matches!(e.source, DecodeError::Payload { event_type: "Opened", .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn corrupt_metadata_is_a_typed_error_naming_the_position() {
    let store = pg_store().await;
    execute_in_schema(
        &store,
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) \
         VALUES ('s-1', 1, gen_random_uuid(), 'E', 1, '{}', '[\"not\", \"an object\"]')",
    )
    .await;
    let error = store
        .read_stream(&StreamId::new("s-1").unwrap(), StreamRead::forward())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt(c) if c.position > Position::START && c.reason.contains("metadata")
            && c.stream == "s-1" && c.version == Version::new(1) && c.event_type == "E"),
        "{error:?}"
    );
}

#[tokio::test]
async fn schema_names_crafted_as_sql_are_refused() {
    for name in [
        "es; DROP TABLE events",
        "es\"; DROP SCHEMA public CASCADE; --",
        "ES",
        "pg_temp",
        "",
    ] {
        let error = PgEventStore::builder()
            .schema(name)
            .connect(&database_url())
            .await
            .unwrap_err();
        assert!(
            matches!(error, PgSetupError::InvalidSchemaName { .. }),
            "{name:?} gave {error:?}"
        );
    }
}

#[tokio::test]
async fn stream_ids_event_types_and_payloads_crafted_as_sql_are_bound_as_data() {
    let store = pg_store().await;
    let hostile = "x'); DROP TABLE events; --";
    let stream = StreamId::new(format!("account-{hostile}")).unwrap();
    let event = NewEvent::new(
        "T'); DELETE FROM streams; --",
        1,
        json!({ "sql": "'; TRUNCATE events; --" }),
    )
    .with_metadata(Metadata::new().with("k'--", "v\"; --"));
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event.clone()])
        .await
        .unwrap();
    let read = store
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].stream_id, stream);
    assert_eq!(read[0].event_type, event.event_type);
    assert_eq!(read[0].payload, event.payload);
    assert_eq!(read[0].metadata, event.metadata);
    // The tables are intact and hold exactly that.
    let other = StreamId::new("other-1").unwrap();
    store
        .append(
            &other,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .read_stream(&other, StreamRead::forward())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_payload_with_a_nul_character_is_refused_naming_the_event() {
    let store = pg_store().await;
    let stream = StreamId::new("s-1").unwrap();
    let good = NewEvent::new("E", 1, json!({ "text": "fine" }));
    let bad = NewEvent::new("E", 1, json!({ "text": "nul \u{0} inside" }));
    let error = store
        .append(&stream, ExpectedVersion::Any, vec![good, bad.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::InvalidEvent { event_id, reason, .. } if *event_id == bad.event_id && reason.contains("U+0000")),
        "{error:?}"
    );
    assert!(
        store
            .read_stream(&stream, StreamRead::forward())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_win_one_version_each_and_leave_no_gaps() {
    const WRITERS: u64 = 16;
    const EACH: u64 = 20;
    let store = pg_store().await;
    let stream = StreamId::new("hot-1").unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, stream) = (store.clone(), stream.clone());
            tokio::spawn(async move {
                let (mut won, mut lost) = (0, 0);
                while won < EACH {
                    let current = store
                        .read_stream(&stream, StreamRead::backward().limit(1))
                        .await
                        .unwrap()
                        .first()
                        .map_or(Version::INITIAL, |e| e.version);
                    let event = NewEvent::new("E", 1, json!({ "writer": w, "n": won }));
                    match store
                        .append(&stream, ExpectedVersion::Exact(current), vec![event])
                        .await
                    {
                        Ok(result) => {
                            assert_eq!(result.last_version, current.next());
                            won += 1;
                        }
                        Err(StoreError::Conflict { actual, .. }) => {
                            assert!(
                                actual > Some(current),
                                "a conflict must name a newer version"
                            );
                            lost += 1;
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
                lost
            })
        })
        .collect();
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let events = store
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=WRITERS * EACH).collect::<Vec<_>>());
    let distinct: std::collections::HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len(), events.len());
    assert!(
        conflicts > 0,
        "the writers never raced; the test proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_concurrently_and_repeatedly_without_harm() {
    let schema = fresh_schema();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(
            PgEventStore::builder()
                .schema(&schema)
                .max_connections(2)
                .connect(&database_url())
                .await
                .unwrap(),
        );
    }
    let runs: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| tokio::spawn(async move { store.migrate().await }))
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    stores[0].migrate().await.unwrap();
    let stream = StreamId::new("s-1").unwrap();
    stores[1]
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(
        stores[2]
            .read_stream(&stream, StreamRead::forward())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_second_process_sees_appends_live_through_notifications() {
    let writer = pg_store().await;
    // Another store object on its own pool: no in-process wake-up reaches it, only NOTIFY (or its slow poll).
    let reader_store = PgEventStore::builder()
        .schema(writer.schema().as_str())
        .poll_interval(std::time::Duration::from_secs(3600))
        .connect(&database_url())
        .await
        .unwrap();
    let mut live = reader_store.subscribe_all(Position::START);
    // Let the listener connect before the append, so the notification is not the only thing racing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stream = StreamId::new("s-1").unwrap();
    writer
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .unwrap();
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        futures::StreamExt::next(&mut live),
    )
    .await
    .expect("no notification reached the other store (its poll is an hour)");
    assert_eq!(got.unwrap().unwrap().stream_id, stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_repository_retries_conflicts_on_postgres() {
    let accounts = Repository::<Account, _>::new(pg_store().await).with_max_attempts(50);
    let loaded = tests::racing_deposits(accounts, 8, 10).await;
    assert_eq!((loaded.version.get(), loaded.state.balance), (81, 80));
}

#[tokio::test]
async fn mark_processed_is_true_once_per_consumer_and_event_and_rolls_back_with_its_transaction() {
    let store = pg_store().await;
    let event = es_core::EventId::new();
    let mut tx = store.pool().begin().await.unwrap();
    assert!(
        store
            .mark_processed(&mut tx, "mailer", event)
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    assert!(
        store
            .mark_processed(&mut tx, "mailer", event)
            .await
            .unwrap(),
        "a rolled-back mark must not count"
    );
    assert!(
        !store
            .mark_processed(&mut tx, "mailer", event)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_processed(&mut tx, "webhook", event)
            .await
            .unwrap(),
        "consumers are separate"
    );
    tx.commit().await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    assert!(
        !store
            .mark_processed(&mut tx, "mailer", event)
            .await
            .unwrap()
    );
}

/// Counts of sequential and index scans on the store's `events` table, once the statistics show at least `min`
/// scans in all (backends flush their counters a moment after they go idle).
async fn events_scans(store: &PgEventStore, min: i64) -> (i64, i64) {
    for _ in 0..100 {
        let (seq, idx): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = 'events'",
        )
        .bind(store.schema().as_str())
        .fetch_one(store.pool())
        .await
        .unwrap();
        if seq + idx >= min {
            return (seq, idx);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the statistics never showed {min} scans");
}

#[tokio::test]
async fn appends_keep_using_indexes_on_a_store_that_started_empty() {
    // One connection, so the function's cached plans are made while the table is empty and then reused.
    let store = tests::pg_store_with(PgEventStore::builder().max_connections(1)).await;
    for call in 0..40 {
        let stream = StreamId::new(format!("s-{call}")).unwrap();
        let batch = (0..50)
            .map(|n| NewEvent::new("E", 1, json!({ "n": n })))
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, batch)
            .await
            .unwrap();
    }
    let (seq, idx) = events_scans(&store, 40).await;
    assert!(
        seq <= 5,
        "appends scanned the events table sequentially {seq} times ({idx} index scans)"
    );
}
