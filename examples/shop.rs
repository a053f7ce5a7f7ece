//! The order process manager example: three orders, three endings — shipped; payment failed, so the stock is released and the
//! order cancelled (compensation); payment never answered, so the deadline cancels it.
//!
//! In memory:
//! ```text
//! cargo run --example shop
//! ```
//! On PostgreSQL (schema `shop`, or `SHOP_SCHEMA`):
//! ```text
//! cargo run --example shop -- --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! ```
//! In a SQLite file (a second run adds its orders to the first run's history; the process manager goes on from its
//! checkpoint):
//! ```text
//! cargo run --example shop -- --sqlite shop.db
//! ```

use std::time::Duration;

use chrono::Utc;
use es_core::process::{ProcessRunner, ProcessStore, RunningProcess};
use es_core::projection::{CheckpointStore, DeadLetterStore};
use es_core::{EventStore, Metadata};
use es_memory::InMemoryEventStore;
use es_postgres::PgEventStore;
use examples::shop::{
    OrderCommand, OrderPlaced, OrderProcess, PaymentCommand, ShopRouter, StockCommand,
};
use examples::store_choice::{StoreChoice, open_sqlite, run_suffix};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let choice = StoreChoice::from_args(std::env::args().skip(1), None)
        .map_err(|usage| format!("usage: shop {usage}"))?;
    match choice {
        StoreChoice::Memory => {
            println!("Store: in memory.\n");
            story(InMemoryEventStore::new(), "").await
        }
        StoreChoice::Postgres(url) => {
            let schema = std::env::var("SHOP_SCHEMA").unwrap_or_else(|_| "shop".to_owned());
            let store = PgEventStore::builder()
                .schema(&schema)
                .connect(&url)
                .await?;
            store.migrate().await?;
            println!("Store: PostgreSQL, schema `{schema}`.\n");
            story(store, &run_suffix()).await
        }
        StoreChoice::Sqlite(file) => story(open_sqlite(&file).await?, &run_suffix()).await,
    }
}

async fn story<S>(store: S, run: &str) -> Result<(), Error>
where
    S: EventStore + ProcessStore + CheckpointStore + DeadLetterStore + Clone + 'static,
{
    let router = ShopRouter::new(store.clone());
    let (orders, stock, payments) = (
        router.orders.clone(),
        router.stock.clone(),
        router.payments.clone(),
    );
    let sku = format!("book{run}");
    stock
        .execute(
            &sku,
            &StockCommand::Restock { quantity: 5 },
            Metadata::new(),
        )
        .await?;
    let process_manager =
        ProcessRunner::new(OrderProcess, router, store.clone()).start(store.clone(), store.clone());

    let ids: Vec<String> = ["ada", "bob", "cy"]
        .iter()
        .map(|name| format!("{name}{run}"))
        .collect();
    for id in &ids {
        println!("{id} orders one book.");
        let place = OrderPlaced {
            order_id: id.clone(),
            sku: sku.clone(),
            quantity: 1,
            amount: 2_500,
        };
        orders
            .execute(id, &OrderCommand::Place(place), Metadata::new())
            .await?;
    }
    settle(&store, &process_manager).await?;
    println!(
        "\nThe process manager reserved stock and asked for payment for each. The payment provider answers:"
    );
    println!("  {}: charged", ids[0]);
    payments
        .execute(&ids[0], &PaymentCommand::Confirm, Metadata::new())
        .await?;
    println!("  {}: declined", ids[1]);
    payments
        .execute(
            &ids[1],
            &PaymentCommand::Decline {
                reason: "card declined".into(),
            },
            Metadata::new(),
        )
        .await?;
    println!("  {}: (silence)", ids[2]);
    settle(&store, &process_manager).await?;
    println!("\nHalf a minute later, the payment deadline fires for the silent one.");
    process_manager
        .fire_due_timers(Utc::now() + chrono::Duration::seconds(31))
        .await?;
    settle(&store, &process_manager).await?;

    println!("\nOutcome:");
    for id in &ids {
        println!("  {id:<12} {:?}", orders.load(id).await?.state.status);
    }
    let book = stock.load(&sku).await?.state;
    println!(
        "  stock of {sku}: {} available, reserved for {:?}",
        book.available,
        book.reserved.keys().collect::<Vec<_>>()
    );
    process_manager.shutdown().await;
    Ok(())
}

/// Waits until the process manager has handled every event, including those its own commands add.
async fn settle<S: EventStore>(store: &S, process_manager: &RunningProcess) -> Result<(), Error> {
    // The head can lag behind commits while other transactions are open: trust a quiet moment once it lasts.
    let (mut last, mut quiet) = (None, 0);
    while quiet < 3 {
        let head = store.head().await?;
        if head == last {
            quiet += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        quiet = 0;
        if let Some(head) = head {
            process_manager
                .wait_for(head, Duration::from_secs(30))
                .await?;
        }
        last = head;
    }
    Ok(())
}
