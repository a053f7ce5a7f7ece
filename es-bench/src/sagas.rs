//! The order saga's throughput: commands routed per second while it works through a backlog of orders.

use std::time::{Duration, Instant};

use es_core::{EventStore, Metadata, ProcessRunner, ProjectionOptions};
use es_postgres::PgEventStore;
use examples::shop::{OrderCommand, OrderPlaced, OrderSaga, ShopRouter, StockCommand};

use crate::report::Figure;
use crate::stats::rate;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Places `orders` orders, then times the saga reserving stock and requesting payment for each (two routed
/// commands per order, each a `Repository::execute_as`).
pub(crate) async fn postgres(store: &PgEventStore, orders: usize) -> Result<Vec<Figure>, Error> {
    let router = ShopRouter::new(store.clone());
    let quantity = u32::try_from(orders)?;
    router
        .stock
        .execute(
            "bench-book",
            &StockCommand::Restock { quantity },
            Metadata::new(),
        )
        .await?;
    for i in 0..orders {
        let order_id = format!("bench-{i}");
        let place = OrderCommand::Place(OrderPlaced {
            order_id: order_id.clone(),
            sku: "bench-book".into(),
            quantity: 1,
            amount: 100,
        });
        router
            .orders
            .execute(&order_id, &place, Metadata::new())
            .await?;
    }
    let started = Instant::now();
    let running = ProcessRunner::new(OrderSaga, router, store.clone())
        .options(ProjectionOptions::default().batch_size(100))
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
    Ok(vec![
        Figure::new(
            "postgres: order saga, commands routed",
            rate(orders * 2, elapsed),
            "commands/s",
        )
        .note(format!(
            "{orders} orders: reserve stock, request payment; each an idempotent execute"
        )),
    ])
}
