//! Projection processes on PostgreSQL, killed with SIGKILL: the read model still ends exactly once; a standby takes
//! over from a dead active instance.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tests::child::{ChildProcess, kill_mid_work};
use tests::ledger::{PgLedger, post};
use tests::{all_streams, pg_store};

const EVENTS: usize = 3_000;

/// A `ledger_worker` process relaying at `pause_ms` per event.
fn spawn_ledger(schema: &str, pause_ms: u64) -> ChildProcess {
    ChildProcess::spawn(
        env!("CARGO_BIN_EXE_ledger_worker"),
        &[schema, &EVENTS.to_string(), &pause_ms.to_string()],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_mid_batch_again_and_again_ends_exactly_once() {
    let store = pg_store().await;
    let ledger = PgLedger::create(&store).await;
    let (expected, _) = post(&store, "acct", EVENTS, 11, 7).await;
    let schema = store.schema().as_str().to_owned();
    // Batches of 50 at ~1 ms per event: a kill at a random moment lands inside a batch's transaction.
    let kills = kill_mid_work(
        5,
        || spawn_ledger(&schema, 1),
        || ledger.applied(&store),
        EVENTS as i64,
    )
    .await;
    spawn_ledger(&schema, 0).finish(Duration::from_secs(120));
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
    let active = spawn_ledger(&schema, 1);
    active.expect("running", Duration::from_secs(30));
    let standby = spawn_ledger(&schema, 0);
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

fn spawn_process_manager(schema: &str) -> ChildProcess {
    // 40 orders against 30 books: 30 payment requests, 10 orders cancelled for want of stock.
    ChildProcess::spawn(env!("CARGO_BIN_EXE_process_worker"), &[schema, "30", "10"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_manager_killed_again_and_again_leaves_the_streams_of_a_clean_run() {
    const ORDERS: usize = 40;
    let clean = pg_store().await;
    place_orders(&clean, ORDERS).await;
    spawn_process_manager(clean.schema().as_str()).finish(Duration::from_secs(120));
    let clean = all_streams(&clean).await;

    let killed = pg_store().await;
    place_orders(&killed, ORDERS).await;
    for round in 0..4u64 {
        let worker = spawn_process_manager(killed.schema().as_str());
        worker.expect("running", Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(
            150 + fastrand::u64(0..200) + round * 13,
        ))
        .await;
        worker.kill();
        if round == 0 {
            assert_ne!(
                all_streams(&killed).await,
                clean,
                "the first kill came after the process manager had finished"
            );
        }
    }
    spawn_process_manager(killed.schema().as_str()).finish(Duration::from_secs(120));
    let killed = all_streams(&killed).await;
    assert!(
        clean.keys().any(|s| s.starts_with("payment-")),
        "the clean run did not get as far as payments"
    );
    assert_eq!(
        killed, clean,
        "a killed process manager duplicated or lost a command"
    );
}
