//! Processes sharing one SQLite file: writers in two processes and eight tasks against a live reader; writers
//! SIGKILLed in the middle of their appends. (Projection processes killed mid-batch and taken over: the worker suite,
//! `worker_conformance.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use es_core::{EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId};
use es_sqlite::SqliteEventStore;
use futures::StreamExt;
use tests::child::ChildProcess;
use tests::fresh_sqlite_path;

const BATCHES: usize = 60;

fn spawn_writer(file: &Path, name: &str, batches: usize, size: usize) -> ChildProcess {
    ChildProcess::spawn(
        env!("CARGO_BIN_EXE_sqlite_worker"),
        &[
            "append",
            &file.display().to_string(),
            name,
            &batches.to_string(),
            &size.to_string(),
        ],
    )
}

async fn everything(store: &SqliteEventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read all")
}

/// Batch `k` of a task: its own stream for even `k`, `shared` for odd; 1 to 3 events.
fn task_batch(task: usize, k: usize) -> (String, usize) {
    let stream = match k % 2 {
        0 => format!("t{task}"),
        _ => "shared".to_owned(),
    };
    (stream, 1 + k % 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_and_two_processes_on_one_file_reach_a_live_reader_once_and_in_order() {
    let file = fresh_sqlite_path();
    let store = SqliteEventStore::builder()
        .poll_interval(Duration::from_millis(20))
        .open(&file)
        .await
        .unwrap();
    let mut feed = store.subscribe_all(Position::START);
    let processes = [
        spawn_writer(&file, "p0", BATCHES, 3),
        spawn_writer(&file, "p1", BATCHES, 3),
    ];
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..BATCHES {
                    let (stream, size) = task_batch(task, k);
                    let events = (0..size)
                        .map(|i| NewEvent::new("Posted", 1, serde_json::json!({ "amount": i })))
                        .collect();
                    store
                        .append(
                            &StreamId::new(stream).unwrap(),
                            ExpectedVersion::Any,
                            events,
                        )
                        .await
                        .unwrap_or_else(|e| panic!("task {task}, batch {k}: {e}"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for process in processes {
        process.finish(Duration::from_secs(60));
    }

    let committed = everything(&store).await;
    let per_task: usize = (0..BATCHES).map(|k| task_batch(0, k).1).sum();
    assert_eq!(committed.len(), 8 * per_task + 2 * BATCHES * 3);
    let mut delivered = Vec::with_capacity(committed.len());
    while delivered.len() < committed.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {} delivered", delivered.len(), committed.len()))
            .expect("the feed went on")
            .expect("no error reaches the reader");
        delivered.push(event);
    }
    let ids: HashSet<_> = delivered.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), delivered.len(), "an event was delivered twice");
    assert_eq!(
        delivered.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        committed.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        "the reader got every committed event, in the order of the log"
    );
    assert!(
        delivered.windows(2).all(|w| w[0].position < w[1].position),
        "increasing positions"
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for event in &delivered {
        let last = versions.entry(event.stream_id.as_str()).or_default();
        assert_eq!(
            event.version.get(),
            *last + 1,
            "{} out of order",
            event.stream_id
        );
        *last += 1;
    }
    let shared_per_task: usize = (0..BATCHES)
        .map(|k| task_batch(0, k))
        .filter(|(stream, _)| stream == "shared")
        .map(|(_, size)| size)
        .sum();
    assert_eq!(
        versions["shared"],
        (8 * shared_per_task + 2 * (BATCHES / 2) * 3) as u64
    );
}

/// The batch ids a writer process printed as acknowledged.
fn acknowledged(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("acked "))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_append_ten_times_leaves_whole_batches_and_every_acknowledged_event() {
    const SIZE: usize = 20;
    let file = fresh_sqlite_path();
    drop(SqliteEventStore::open(&file).await.unwrap());
    let mut acked = Vec::new();
    for round in 0..10u64 {
        // It appends batches as fast as it can; a kill at a random moment lands inside one.
        let writer = spawn_writer(&file, &format!("r{round}"), 1_000_000, SIZE);
        let first = writer.line_starting_with("acked ", Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(5..120))).await;
        let mut lines = writer.kill_and_collect();
        lines.insert(0, format!("acked {first}"));
        acked.extend(acknowledged(&lines));

        let store = SqliteEventStore::open(&file)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the file does not open: {e}"));
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(store.readers())
            .await
            .unwrap();
        assert_eq!(integrity, "ok", "round {round}");
        let mut batches: HashMap<String, usize> = HashMap::new();
        for event in everything(&store).await {
            let batch = event.payload["batch"].as_str().unwrap().to_owned();
            assert_eq!(event.payload["of"], SIZE);
            *batches.entry(batch).or_default() += 1;
        }
        for (batch, count) in &batches {
            assert_eq!(*count, SIZE, "round {round}: batch {batch} is partial");
        }
        for batch in &acked {
            assert!(
                batches.contains_key(batch),
                "round {round}: acknowledged batch {batch} is missing"
            );
        }
        drop(store);
    }
    assert!(acked.len() >= 10, "every round acknowledged a batch");
}
