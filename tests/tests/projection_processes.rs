//! Projection processes on PostgreSQL, killed with SIGKILL: the read model still ends exactly once; a standby takes
//! over from a dead active instance.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::ledger::{PgLedger, post};
use tests::{database_url, pg_store};

const EVENTS: usize = 3_000;

/// A `ledger_worker` process and the lines it prints.
struct Worker {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Worker {
    fn spawn(schema: &str, pause_ms: u64) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger_worker"))
            .args([schema, &EVENTS.to_string(), &pause_ms.to_string()])
            .env("DATABASE_URL", database_url())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ledger_worker");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the worker to print `line`.
    fn expect(&self, line: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(got) if got == line => return,
                Ok(_) => {}
                Err(_) => panic!("the worker did not print `{line}` within {within:?}"),
            }
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    fn finish(mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "the worker failed: {status}");
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("the worker did not finish within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_mid_batch_again_and_again_ends_exactly_once() {
    let store = pg_store().await;
    let ledger = PgLedger::create(&store).await;
    let (expected, _) = post(&store, "acct", EVENTS, 11, 7).await;
    let schema = store.schema().as_str().to_owned();
    let mut kills = 0;
    for round in 0..5u64 {
        let worker = Worker::spawn(&schema, 1);
        worker.expect("running", Duration::from_secs(30));
        // Batches of 50 at ~1 ms per event: a kill at a random moment lands inside a batch's transaction.
        tokio::time::sleep(Duration::from_millis(
            100 + fastrand::u64(0..250) + round * 17,
        ))
        .await;
        worker.kill();
        kills += 1;
        let applied = ledger.applied(&store).await;
        assert!(
            applied < EVENTS as i64,
            "round {round}: the worker finished before it was killed ({applied})"
        );
    }
    Worker::spawn(&schema, 0).finish(Duration::from_secs(120));
    assert_eq!(kills, 5);
    assert_eq!(ledger.applied(&store).await, EVENTS as i64);
    assert_eq!(
        ledger.totals(&store).await,
        expected,
        "a killed batch was applied twice or lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_active_process_dies_without_double_application() {
    let store = pg_store().await;
    let ledger = PgLedger::create(&store).await;
    let (expected, _) = post(&store, "acct", EVENTS, 5, 10).await;
    let schema = store.schema().as_str().to_owned();
    let active = Worker::spawn(&schema, 1);
    active.expect("running", Duration::from_secs(30));
    let standby = Worker::spawn(&schema, 0);
    standby.expect("standby", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ledger.applied(&store).await < EVENTS as i64,
        "the active process finished too early"
    );
    active.kill();
    // The standby polls the lock every 100 ms; the bound here only keeps a broken takeover from hanging the suite.
    standby.expect("running", Duration::from_secs(30));
    standby.finish(Duration::from_secs(120));
    assert_eq!(ledger.applied(&store).await, EVENTS as i64);
    assert_eq!(ledger.totals(&store).await, expected);
}
