//! `es` end to end against PostgreSQL: a runner in this process runs a projection with the control plane; the
//! `es` binary, another process, reads and controls it through the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use es_core::process::{ProcessRecord, ProcessStore, Timer, TimerChanges};
use es_core::projection::{FailurePolicy, ProjectionOptions};
use es_core::{EventStore, ExpectedVersion, NewEvent, ProjectionRunner, StreamId};
use es_postgres::{PgEventStore, PgProjectionWorker};
use tests::child::ChildProcess;
use tests::ledger::{LedgerEvent, POISON, PgLedger, post};
use tests::{database_url, fresh_schema};

mod support;

use support::{ES, Target, es, es_expect, es_json, quick_control, status_until};

async fn poison(store: &PgEventStore, stream: &str) -> String {
    let event =
        NewEvent::from_domain(&LedgerEvent::Posted { amount: POISON }, Default::default()).unwrap();
    let id = event.event_id.to_string();
    store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn es_operates_a_postgres_store_end_to_end() {
    let schema = fresh_schema();
    // `es migrate` creates the store.
    let out = es_expect(Target::Schema(&schema), &["migrate"], 0);
    assert!(out.contains("applied"), "{out}");
    es_expect(Target::Schema(&schema), &["schema", "check"], 0);
    let store = PgEventStore::builder()
        .schema(schema.clone())
        .connect(&database_url())
        .await
        .unwrap();
    let ledger = PgLedger::create(&store).await;
    let options = ProjectionOptions::default()
        .max_attempts(1)
        .on_failure(FailurePolicy::DeadLetter);
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(&store, ledger.clone(), options))
        .control_plane(store.clone(), quick_control("worker-1"))
        .start();

    post(&store, "acct", 30, 3, 5).await;
    let bad = poison(&store, "acct-7").await;

    // Streams and events.
    let streams = es_json(
        Target::Schema(&schema),
        &["streams", "list", "--category", "acct"],
    );
    let ids: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acct-0", "acct-1", "acct-2", "acct-7"]);
    let shown = es_json(
        Target::Schema(&schema),
        &["stream", "show", "acct-1", "--from", "2", "--limit", "3"],
    );
    let versions: Vec<u64> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 3, 4]);
    assert!(
        shown[0].get("payload").is_none(),
        "payloads are hidden unless asked for"
    );
    let with = es_json(
        Target::Schema(&schema),
        &["stream", "show", "acct-1", "--payloads", "--limit", "1"],
    );
    assert!(with[0]["payload"]["amount"].is_i64(), "{with:#}");
    es_expect(Target::Schema(&schema), &["stream", "show", "acct-404"], 5);
    let tail = es_json(Target::Schema(&schema), &["events", "tail", "--limit", "2"]);
    assert_eq!(tail.as_array().unwrap().len(), 2);
    assert_eq!(
        tail[1]["event_id"],
        bad.as_str(),
        "tail ends with the newest event"
    );

    // `events tail --follow` prints events committed after it started.
    let follow = ChildProcess::spawn_on(
        ES,
        &[
            "--schema", &schema, "events", "tail", "--limit", "0", "--follow", "--json",
        ],
        &database_url(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    post(&store, "live", 1, 1, 1).await;
    let line = follow.line_starting_with("{", Duration::from_secs(20));
    assert!(line.contains("\"stream_id\":\"live-0\""), "{line}");
    follow.signal("INT");
    follow.finish(Duration::from_secs(10));

    // Status: caught up, one dead letter, run by worker-1.
    let status = status_until(
        Target::Schema(&schema),
        "caught up with a dead letter",
        |s| s["lag_events"] == 0 && s["dead_letters"] == 1,
    );
    assert_eq!(status["active"], "worker-1");
    assert_eq!(status["state"], "running");
    let table = es_expect(Target::Schema(&schema), &["projections", "status"], 0);
    assert!(
        table.starts_with("PROJECTION") && table.contains("worker-1"),
        "{table}"
    );
    eprintln!("$ es projections status   # a poison event parked\n{table}");
    eprintln!(
        "$ es dead-letters list\n{}",
        es_expect(Target::Schema(&schema), &["dead-letters", "list"], 0)
    );

    // Dead letters: listed, shown (payload only when asked), redriven once fixed.
    let letters = es_json(Target::Schema(&schema), &["dead-letters", "list"]);
    assert_eq!(letters[0]["event_id"], bad.as_str());
    assert!(letters[0]["error"].as_str().unwrap().contains("poisoned"));
    let shown = es_expect(
        Target::Schema(&schema),
        &["dead-letters", "show", "ledger", &bad],
        0,
    );
    assert!(
        shown.contains("poisoned") && !shown.contains("payload"),
        "{shown}"
    );
    let shown = es_json(
        Target::Schema(&schema),
        &["dead-letters", "show", "ledger", &bad, "--payloads"],
    );
    assert_eq!(shown["payload"]["amount"], POISON);
    let refused = es(
        Target::Schema(&schema),
        &["dead-letters", "redrive", "ledger", &bad],
    );
    assert_eq!(refused.status.code(), Some(3), "still failing: rejected");
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    eprintln!("$ es dead-letters redrive ledger {bad}   # exit 3\n{said}");
    assert!(said.contains("failed again"));
    ledger.poisoned.store(false, Ordering::SeqCst);
    let out = es_expect(
        Target::Schema(&schema),
        &["dead-letters", "redrive", "ledger", &bad],
        0,
    );
    assert!(out.contains("dead letter is gone"), "{out}");
    assert_eq!(
        es_json(Target::Schema(&schema), &["dead-letters", "list", "ledger"]),
        serde_json::json!([])
    );
    es_expect(
        Target::Schema(&schema),
        &["dead-letters", "discard", "ledger", &bad],
        3,
    );
    es_expect(
        Target::Schema(&schema),
        &["dead-letters", "show", "ledger", &bad],
        5,
    );

    // Pause, resume, rebuild (waits until caught up), reset.
    es_expect(
        Target::Schema(&schema),
        &["projections", "pause", "ledger"],
        0,
    );
    status_until(Target::Schema(&schema), "paused", |s| {
        s["state"] == "paused" && s["paused"] == true
    });
    post(&store, "acct", 4, 1, 4).await;
    status_until(Target::Schema(&schema), "lag while paused", |s| {
        s["lag_events"] == 4
    });
    es_expect(
        Target::Schema(&schema),
        &["projections", "resume", "ledger"],
        0,
    );
    let out = es_expect(
        Target::Schema(&schema),
        &["projections", "wait", "ledger"],
        0,
    );
    assert!(out.contains("caught up"), "{out}");
    let before = ledger.totals(&store).await;
    let out = es_expect(
        Target::Schema(&schema),
        &["projections", "rebuild", "ledger"],
        0,
    );
    eprintln!("$ es projections rebuild ledger\n{out}");
    assert!(
        out.contains("replaying") && out.contains("caught up"),
        "{out}"
    );
    assert_eq!(
        ledger.totals(&store).await,
        before,
        "a rebuild gives the same read model"
    );
    // --timeout bounds the whole command, the wait for the replay included: a paused projection carries out the
    // rebuild but does not replay, so the command gives up after its timeout with exit code 4 (it used to wait on).
    es_expect(
        Target::Schema(&schema),
        &["projections", "pause", "ledger"],
        0,
    );
    let bounded = es(
        Target::Schema(&schema),
        &["projections", "rebuild", "ledger", "--timeout", "2"],
    );
    let said = String::from_utf8_lossy(&bounded.stderr).into_owned();
    assert_eq!(bounded.status.code(), Some(4), "{said}");
    assert!(
        said.contains("ledger: rebuild: not done within the timeout of 2s"),
        "{said}"
    );
    es_expect(
        Target::Schema(&schema),
        &["projections", "resume", "ledger"],
        0,
    );
    es_expect(
        Target::Schema(&schema),
        &["projections", "wait", "ledger"],
        0,
    );
    assert_eq!(ledger.totals(&store).await, before);
    let head = store.head().await.unwrap().unwrap().to_string();
    let out = es_expect(
        Target::Schema(&schema),
        &["projections", "reset", "ledger", "--to", &head],
        0,
    );
    assert!(out.contains(&head), "{out}");
    es_expect(
        Target::Schema(&schema),
        &["projections", "reset", "ledger", "--to", "not-a-position"],
        2,
    );
    es_expect(
        Target::Schema(&schema),
        &["projections", "pause", "nope"],
        5,
    );
    es_expect(
        Target::Schema(&schema),
        &["projections", "status", "nope"],
        5,
    );

    // Process managers.
    let record = ProcessRecord {
        state: serde_json::json!({ "step": "reserved" }),
        version: 3,
        handled: vec!["event:1".into()],
    };
    let timers = TimerChanges {
        set: vec![Timer {
            name: "expire".into(),
            at: chrono::Utc::now() + chrono::Duration::minutes(5),
        }],
        remove: vec![],
    };
    store
        .save_process("checkout", "order-9", None, record, timers)
        .await
        .unwrap();
    let processes = es_json(Target::Schema(&schema), &["processes", "list"]);
    assert_eq!(processes[0]["instance"], "order-9");
    assert_eq!(processes[0]["timers"][0]["name"], "expire");
    let shown = es_expect(
        Target::Schema(&schema),
        &["processes", "show", "checkout", "order-9"],
        0,
    );
    assert!(
        shown.contains("reserved") && shown.contains("expire"),
        "{shown}"
    );
    es_expect(
        Target::Schema(&schema),
        &["processes", "show", "checkout", "order-0"],
        5,
    );

    // Once the runner is gone, control requests are refused at once.
    running.shutdown().await;
    status_until(Target::Schema(&schema), "stopped", |s| {
        s["state"] == "stopped"
    });
    let refused = es(
        Target::Schema(&schema),
        &["projections", "rebuild", "ledger"],
    );
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no live instance"));
}

#[test]
fn es_fails_clearly_without_a_database_and_never_prints_a_password() {
    let out = Command::new(ES)
        .args(["streams", "list"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database-url"));
    let out = Command::new(ES)
        .args([
            "--database-url",
            "postgres://postgres:s3cret-pw@127.0.0.1:1/test",
            "streams",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("127.0.0.1"),
        "names where it tried: {stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    let help = Command::new(ES).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn es_names_the_transaction_that_stalls_a_projection() {
    let schema = fresh_schema();
    es_expect(Target::Schema(&schema), &["migrate"], 0);
    let store = PgEventStore::builder()
        .schema(schema.clone())
        .connect(&database_url())
        .await
        .unwrap();
    let ledger = PgLedger::create(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(
            &store,
            ledger,
            ProjectionOptions::default(),
        ))
        .control_plane(store.clone(), quick_control("worker-1"))
        .start();
    post(&store, "acct", 10, 2, 5).await;
    status_until(Target::Schema(&schema), "caught up", |s| {
        s["lag_events"] == 0 && s["checkpoint"].is_object() && s["active"] == "worker-1"
    });

    // A transaction left open elsewhere (it took a transaction id, then went idle): events committed after it
    // started wait behind it, and the status names it.
    let mut open = store.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *open)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *open)
        .await
        .unwrap();
    post(&store, "acct", 5, 1, 5).await;
    let stalled = status_until(Target::Schema(&schema), "held back", |s| {
        s["held_back"]["events"] == 5
    });
    assert_eq!(stalled["lag_events"], 5, "{stalled:#}");
    assert_eq!(stalled["held_back"]["pid"], pid);
    let table = es_expect(Target::Schema(&schema), &["projections", "status"], 0);
    eprintln!("$ es projections status   # a transaction held open\n{table}");
    assert!(
        table.contains(&format!(
            "5 events held back by pid {pid} (idle in transaction"
        )),
        "{table}"
    );

    open.commit().await.unwrap();
    status_until(Target::Schema(&schema), "caught up after the commit", |s| {
        s["lag_events"] == 0 && s["held_back"].is_null()
    });
    running.shutdown().await;
}
