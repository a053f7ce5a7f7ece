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

/// Places `orders` orders (one book each) against 30 books; the rest run out of stock.
async fn place_orders(store: &es_postgres::PgEventStore, orders: usize) {
    use es_core::Metadata;
    use examples::shop::{OrderCommand, OrderPlaced, ShopRouter, StockCommand};
    let router = ShopRouter::new(store.clone());
    router
        .stock
        .execute(
            "book",
            &StockCommand::Restock { quantity: 30 },
            Metadata::new(),
        )
        .await
        .unwrap();
    for i in 0..orders {
        let order_id = format!("o-{i}");
        let place = OrderPlaced {
            order_id: order_id.clone(),
            sku: "book".into(),
            quantity: 1,
            amount: 100,
        };
        router
            .orders
            .execute(&order_id, &OrderCommand::Place(place), Metadata::new())
            .await
            .unwrap();
    }
}

/// Every stream's events as (type, payload).
async fn streams(
    store: &es_postgres::PgEventStore,
) -> std::collections::BTreeMap<String, Vec<(String, serde_json::Value)>> {
    use es_core::{EventStore, Position};
    let mut all = std::collections::BTreeMap::<String, Vec<_>>::new();
    for event in store.read_all(Position::START, usize::MAX).await.unwrap() {
        all.entry(event.stream_id.to_string())
            .or_default()
            .push((event.event_type, event.payload));
    }
    all
}

fn spawn_saga(schema: &str) -> Worker {
    // 40 orders against 30 books: 30 payment requests, 10 orders cancelled for want of stock.
    let mut child = Command::new(env!("CARGO_BIN_EXE_saga_worker"))
        .args([schema, "30", "10"])
        .env("DATABASE_URL", database_url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn saga_worker");
    let stdout = child.stdout.take().expect("stdout");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Worker { child, lines }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_process_killed_again_and_again_leaves_the_streams_of_a_clean_run() {
    const ORDERS: usize = 40;
    let clean = pg_store().await;
    place_orders(&clean, ORDERS).await;
    spawn_saga(clean.schema().as_str()).finish(Duration::from_secs(120));
    let clean = streams(&clean).await;

    let killed = pg_store().await;
    place_orders(&killed, ORDERS).await;
    for round in 0..4u64 {
        let worker = spawn_saga(killed.schema().as_str());
        worker.expect("running", Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(
            150 + fastrand::u64(0..200) + round * 13,
        ))
        .await;
        worker.kill();
        if round == 0 {
            assert_ne!(
                streams(&killed).await,
                clean,
                "the first kill came after the saga had finished"
            );
        }
    }
    spawn_saga(killed.schema().as_str()).finish(Duration::from_secs(120));
    let killed = streams(&killed).await;
    assert!(
        clean.keys().any(|s| s.starts_with("payment-")),
        "the clean run did not get as far as payments"
    );
    assert_eq!(killed, clean, "a killed saga duplicated or lost a command");
}
