//! Process managers on PostgreSQL, killed with SIGKILL again and again: the streams end as in a clean run. (A
//! projection's processes killed mid-batch and taken over: the worker suite, `worker_conformance.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tests::child::ChildProcess;
use tests::{all_streams, pg_store};

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
