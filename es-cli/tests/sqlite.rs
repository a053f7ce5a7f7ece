//! `es --sqlite FILE` end to end: a runner in this process runs a transactional projection on a SQLite file with
//! the control plane; the `es` binary, another process, reads and controls it through the same file, and serves
//! the admin page's API from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::ProjectionRunner;
use es_core::projection::ProjectionOptions;
use es_sqlite::{SqliteEventStore, SqliteProjectionWorker};
use tests::child::ChildProcess;
use tests::fresh_sqlite_path;
use tests::ledger::post;
use tests::sqlite_ledger::SqliteLedger;
use tests::webdriver::http;

mod support;

use support::{ES, Target, es_expect, es_json, quick_control, status_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn es_operates_a_sqlite_store_end_to_end() {
    let file = fresh_sqlite_path();
    // A file that is not there is not created by a read.
    let missing = es_expect(Target::File(&file), &["streams", "list"], 5);
    assert!(missing.is_empty());
    assert!(!file.exists(), "a read created the file");
    let out = es_expect(Target::File(&file), &["migrate"], 0);
    assert!(out.contains("up to date"), "{out}");
    let check = es_json(Target::File(&file), &["schema", "check"]);
    assert_eq!(check["ok"], true, "{check:#}");

    let store = SqliteEventStore::open(&file).await.unwrap();
    let ledger = SqliteLedger::create(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(SqliteProjectionWorker::new(
            &store,
            ledger.clone(),
            ProjectionOptions::default(),
        ))
        .control_plane(store.clone(), quick_control("worker-1"))
        .start();
    post(&store, "acct", 30, 3, 5).await;

    let streams = es_json(
        Target::File(&file),
        &["streams", "list", "--category", "acct"],
    );
    let ids: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acct-0", "acct-1", "acct-2"]);
    assert_eq!(streams[0]["version"], 10);
    let shown = es_json(
        Target::File(&file),
        &["stream", "show", "acct-1", "--from", "2", "--limit", "3"],
    );
    assert_eq!(shown.as_array().unwrap().len(), 3);
    assert_eq!(shown[0]["version"], 2);
    let tail = es_json(Target::File(&file), &["events", "tail", "--limit", "2"]);
    assert_eq!(tail.as_array().unwrap().len(), 2);

    let status = status_until(
        Target::File(&file),
        "caught up, reported by worker-1",
        |s| s["lag_events"] == 0 && s["active"] == "worker-1",
    );
    assert_eq!(status["state"], "running");
    let table = es_expect(Target::File(&file), &["projections", "status"], 0);
    assert!(table.starts_with("PROJECTION"), "{table}");

    // Pause and resume through the file: the runner in this process carries them out.
    es_expect(Target::File(&file), &["projections", "pause", "ledger"], 0);
    status_until(Target::File(&file), "paused", |s| s["state"] == "paused");
    post(&store, "acct", 5, 1, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ledger.applied(&store).await,
        30,
        "a paused projection applies nothing"
    );
    es_expect(Target::File(&file), &["projections", "resume", "ledger"], 0);
    status_until(Target::File(&file), "caught up again", |s| {
        s["state"] == "running" && s["lag_events"] == 0
    });
    assert_eq!(ledger.applied(&store).await, 35);

    // The admin page's API reads the same file.
    let server = ChildProcess::spawn_on(
        ES,
        &[
            "--sqlite",
            &file.display().to_string(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        "",
    );
    let listening = server.line_starting_with("listening on http://", Duration::from_secs(30));
    let port: u16 = listening.rsplit(':').next().unwrap().parse().unwrap();
    let host = format!("127.0.0.1:{port}");
    let (code, body) = http(port, "GET", "/api/projections", &[("Host", &host)], "").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ledger\""), "{body}");
    server.signal("TERM");
    server.finish(std::time::Duration::from_secs(30));
    running.shutdown().await;
}
