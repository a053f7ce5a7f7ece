//! A process on a SQLite store's file for the concurrency and crash tests.
//!
//! - `sqlite_worker append <file> <name> <batches> <batch size>`: appends `batches` batches, alternately to its
//!   own streams (`<name>-0` .. `<name>-3`) and to the stream `shared`, and prints
//!   `acked <batch id> <first position> <last position>` once each append has returned; then `done`.
//!   Every event's payload names its batch and the batch's size (`{"amount", "batch", "of"}`).
//! - `sqlite_worker project <file> <expected events> <pause per event, ms> [lease, ms]`: runs the ledger
//!   projection until it has applied `expected` events, printing its state (`standby`, `running`) as it changes;
//!   then `done`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::projection::ProjectionOptions;
use es_core::{EventStore, ExpectedVersion, NewEvent, ProjectionRunner, StreamId};
use es_sqlite::{SqliteEventStore, SqliteProjectionWorker};
use tests::ledger::report_until_applied;
use tests::sqlite_ledger::SqliteLedger;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match &args[..] {
        [_, mode, file, name, batches, size] if mode == "append" => {
            append(
                file,
                name,
                batches.parse().expect("batches"),
                size.parse().expect("size"),
            )
            .await
        }
        [_, mode, file, expected, pause] if mode == "project" => {
            project(
                file,
                expected.parse().expect("expected"),
                pause.parse().expect("pause"),
                10_000,
            )
            .await
        }
        [_, mode, file, expected, pause, lease] if mode == "project" => {
            project(
                file,
                expected.parse().expect("expected"),
                pause.parse().expect("pause"),
                lease.parse().expect("lease"),
            )
            .await
        }
        _ => panic!(
            "usage: sqlite_worker append <file> <name> <batches> <batch size> | \
             sqlite_worker project <file> <expected events> <pause per event, ms> [lease, ms]"
        ),
    }
    println!("done");
}

async fn append(file: &str, name: &str, batches: usize, size: usize) {
    let store = SqliteEventStore::open(file).await.expect("open");
    for k in 0..batches {
        let stream = match k % 2 {
            0 => format!("{name}-{}", (k / 2) % 4),
            _ => "shared".to_owned(),
        };
        let batch = format!("{name}/{k}");
        let events = (0..size)
            .map(|i| {
                NewEvent::new(
                    "Posted",
                    1,
                    serde_json::json!({ "amount": i + 1, "batch": batch, "of": size }),
                )
            })
            .collect();
        let stream = StreamId::new(stream).expect("stream id");
        let appended = store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap_or_else(|e| panic!("append {batch}: {e}"));
        println!(
            "acked {batch} {} {}",
            appended.first_position, appended.last_position
        );
    }
}

async fn project(file: &str, expected: i64, pause_ms: u64, lease_ms: u64) {
    let store = SqliteEventStore::open(file).await.expect("open");
    let mut ledger = SqliteLedger::create(&store).await;
    ledger.slow = Duration::from_millis(pause_ms);
    let worker = SqliteProjectionWorker::new(
        &store,
        ledger.clone(),
        ProjectionOptions::default().batch_size(50),
    )
    .standby_poll(Duration::from_millis(100))
    .lease(Duration::from_millis(lease_ms));
    let running = ProjectionRunner::new(store.clone()).with(worker).start();
    report_until_applied(running, expected, || ledger.applied(&store)).await;
}
