//! The order process manager's throughput: commands routed per second while it works through a backlog of orders, one
//! instance at a time and several at once.

use std::time::{Duration, Instant};

use es_core::process::ProcessRunner;
use es_core::projection::ProjectionOptions;
use es_core::{EventStore, Metadata};
use es_postgres::PgEventStore;
use examples::shop::{OrderCommand, OrderPlaced, OrderProcess, ShopRouter, StockCommand};

use crate::report::Figure;
use crate::stats::rate;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Process manager instances worked on at once in the concurrent run.
const CONCURRENCY: usize = 16;

/// Two backlogs of `orders` orders (one per run), each timed as the process manager reserves stock and requests payment for
/// every order (two routed commands per order, each a `Repository::execute_as`).
pub(crate) async fn postgres(store: &PgEventStore, orders: usize) -> Result<Vec<Figure>, Error> {
    let one = run(store, orders, 1, "bench-one").await?;
    let many = run(store, orders, CONCURRENCY, "bench-many").await?;
    let note =
        format!("{orders} orders: reserve stock, request payment; each an idempotent execute");
    Ok(vec![
        Figure::new(
            "postgres: order process manager, commands routed, one instance at a time",
            one,
            "commands/s",
        )
        .note(note.clone()),
        Figure::new(
            format!(
                "postgres: order process manager, commands routed, {CONCURRENCY} instances at once"
            ),
            many,
            "commands/s",
        )
        .against("one instance at a time", one)
        .note(note),
    ])
}

/// Places `orders` orders for `sku`, then runs the process manager with `concurrency` until the store is quiet.
async fn run(
    store: &PgEventStore,
    orders: usize,
    concurrency: usize,
    sku: &str,
) -> Result<f64, Error> {
    let router = ShopRouter::new(store.clone());
    let quantity = u32::try_from(orders)?;
    router
        .stock
        .execute(sku, &StockCommand::Restock { quantity }, Metadata::new())
        .await?;
    for i in 0..orders {
        let order_id = format!("{sku}-{i}");
        let place = OrderCommand::Place(OrderPlaced {
            order_id: order_id.clone(),
            sku: sku.into(),
            quantity: 1,
            amount: 100,
        });
        router
            .orders
            .execute(&order_id, &place, Metadata::new())
            .await?;
    }
    let started = Instant::now();
    let running = ProcessRunner::new(OrderProcess, router, store.clone())
        .options(
            ProjectionOptions::default()
                .batch_size(100)
                .concurrency(concurrency),
        )
        .start(store.clone(), store.clone());
    let mut last = None;
    loop {
        let head = store.head().await?;
        if head == last {
            break;
        }
        if let Some(head) = head {
            running.wait_for(head, Duration::from_secs(600)).await?;
        }
        last = head;
    }
    let elapsed = started.elapsed();
    running.shutdown().await;
    Ok(rate(orders * 2, elapsed))
}
