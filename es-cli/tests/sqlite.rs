//! `es --sqlite FILE` end to end: a runner in this process runs a transactional projection on a SQLite file with
//! the control plane; the `es` binary, another process, reads and controls it through the same file, and serves
//! the admin page's API from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use es_core::ProjectionRunner;
use es_core::control::ControlOptions;
use es_core::projection::ProjectionOptions;
use es_sqlite::{SqliteEventStore, SqliteProjectionWorker};
use serde_json::Value;
use tests::child::ChildProcess;
use tests::fresh_sqlite_path;
use tests::ledger::post;
use tests::sqlite_ledger::SqliteLedger;

const ES: &str = env!("CARGO_BIN_EXE_es");

/// Runs `es --sqlite FILE ARGS...`, expects exit code `code`, returns its stdout.
#[track_caller]
fn es(file: &Path, args: &[&str], code: i32) -> String {
    let out = Command::new(ES)
        .arg("--sqlite")
        .arg(file)
        .args(args)
        .output()
        .expect("run es");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "es {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

#[track_caller]
fn es_json(file: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = es(file, &all, 0);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("es {args:?} printed no JSON ({e}): {out}"))
}

/// Polls `es projections status ledger --json` until `check` holds (at most 30 s).
fn status_until(file: &Path, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(30) {
        last = es_json(file, &["projections", "status", "ledger"])[0].clone();
        if check(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("ledger never got {what}; last status {last:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn es_operates_a_sqlite_store_end_to_end() {
    let file = fresh_sqlite_path();
    // A file that is not there is not created by a read.
    let missing = es(&file, &["streams", "list"], 5);
    assert!(missing.is_empty());
    assert!(!file.exists(), "a read created the file");
    let out = es(&file, &["migrate"], 0);
    assert!(out.contains("up to date"), "{out}");
    let check = es_json(&file, &["schema", "check"]);
    assert_eq!(check["ok"], true, "{check:#}");

    let store = SqliteEventStore::open(&file).await.unwrap();
    let ledger = SqliteLedger::create(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(SqliteProjectionWorker::new(
            &store,
            ledger.clone(),
            ProjectionOptions::default(),
        ))
        .control_plane(
            store.clone(),
            ControlOptions::new()
                .instance("worker-1")
                .poll(Duration::from_millis(50))
                .report_every(Duration::from_millis(200)),
        )
        .start();
    post(&store, "acct", 30, 3, 5).await;

    let streams = es_json(&file, &["streams", "list", "--category", "acct"]);
    let ids: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acct-0", "acct-1", "acct-2"]);
    assert_eq!(streams[0]["version"], 10);
    let shown = es_json(
        &file,
        &["stream", "show", "acct-1", "--from", "2", "--limit", "3"],
    );
    assert_eq!(shown.as_array().unwrap().len(), 3);
    assert_eq!(shown[0]["version"], 2);
    let tail = es_json(&file, &["events", "tail", "--limit", "2"]);
    assert_eq!(tail.as_array().unwrap().len(), 2);

    let status = status_until(&file, "caught up, reported by worker-1", |s| {
        s["lag_events"] == 0 && s["active"] == "worker-1"
    });
    assert_eq!(status["state"], "running");
    let table = es(&file, &["projections", "status"], 0);
    assert!(table.starts_with("PROJECTION"), "{table}");

    // Pause and resume through the file: the runner in this process carries them out.
    es(&file, &["projections", "pause", "ledger"], 0);
    status_until(&file, "paused", |s| s["state"] == "paused");
    post(&store, "acct", 5, 1, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ledger.applied(&store).await,
        30,
        "a paused projection applies nothing"
    );
    es(&file, &["projections", "resume", "ledger"], 0);
    status_until(&file, "caught up again", |s| {
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
    let answer = get(&listening, "/api/projections");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ledger\""), "{answer}");
    server.kill();
    running.shutdown().await;
}

/// `GET path` from the server at `address` (`127.0.0.1:PORT`), as raw HTTP/1.1: the whole answer.
fn get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(address).expect("connect to es serve");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    answer
}
