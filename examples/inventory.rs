//! The second tutorial: a warehouse on the framework, end to end.
//!
//! - an aggregate (`examples/src/inventory.rs`): stock received, reserved, released;
//! - an upcaster, declared once on the event type: a delivery booked by release 1 (`Received { qty }`) loads, and
//!   the read model counts it, with nothing registered twice;
//! - snapshots every 2 events, written in the background;
//! - a read model of available stock per item, kept by a projection, read right after a write (read-your-writes
//!   with `Executed::position()`);
//! - on PostgreSQL, the read model is a table written in the transaction that moves its checkpoint.
//!
//! In memory:
//! ```text
//! cargo run --example inventory
//! ```
//! On PostgreSQL (schema `inventory`, or `INVENTORY_SCHEMA`):
//! ```text
//! cargo run --example inventory -- --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! ```
//! Run twice, the second run continues the first one's stock. The example checks its own results and fails if the
//! read model and the aggregates disagree.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_core::aggregate::{SnapshotPolicy, SnapshotStore};
use es_core::projection::{HandlerError, ProjectionOptions, RunningProjections};
use es_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Projection, ProjectionRunner, RecordedEvent,
    Repository,
};
use es_memory::InMemoryEventStore;
use es_postgres::sqlx::{self, PgConnection};
use es_postgres::{PgEventStore, PgProjection, PgProjectionWorker};
use examples::inventory::{Item, ItemCommand, ItemEvent};

type Error = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => in_memory().await,
        (Some("--database-url"), Some(url)) => on_postgres(&url).await,
        _ => Err("usage: inventory [--database-url URL]".into()),
    }
}

/// How a stock change moves an item's available units.
fn change(event: &ItemEvent) -> i64 {
    let signed = |quantity: &u64| i64::try_from(*quantity).unwrap_or(i64::MAX);
    match event {
        ItemEvent::Received { quantity, .. } | ItemEvent::Released { quantity, .. } => {
            signed(quantity)
        }
        ItemEvent::Reserved { quantity, .. } => -signed(quantity),
    }
}

/// Available units per item, in memory. At-least-once delivery: each event id is counted once.
#[derive(Clone, Default)]
struct StockLevels(Arc<Mutex<Levels>>);

#[derive(Default)]
struct Levels {
    available: HashMap<String, i64>,
    counted: HashSet<uuid::Uuid>,
}

impl StockLevels {
    fn available(&self, item: &str) -> Result<i64, Error> {
        let levels = self.0.lock().map_err(|_| "stock levels poisoned")?;
        Ok(levels.available.get(item).copied().unwrap_or(0))
    }
}

#[es_core::async_trait]
impl Projection for StockLevels {
    type Event = ItemEvent;

    fn name(&self) -> &str {
        "stock-levels"
    }

    async fn handle(&self, event: ItemEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        let Some(item) = record.stream_id.aggregate_id() else {
            return Ok(());
        };
        let mut levels = self.0.lock().map_err(|_| "stock levels poisoned")?;
        if levels.counted.insert(record.event_id.as_uuid()) {
            *levels.available.entry(item.to_owned()).or_default() += change(&event);
        }
        Ok(())
    }
}

/// Available units per item in table `{schema}.stock_levels`, exactly once.
#[derive(Clone)]
struct PgStockLevels {
    schema: String,
}

impl PgStockLevels {
    async fn create_table(&self, store: &PgEventStore) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS \"{}\".stock_levels (item text PRIMARY KEY, available bigint NOT NULL)",
            self.schema
        ))
        .execute(store.pool())
        .await
        .map(drop)
    }

    async fn available(&self, store: &PgEventStore, item: &str) -> Result<i64, sqlx::Error> {
        let query = format!(
            "SELECT available FROM \"{}\".stock_levels WHERE item = $1",
            self.schema
        );
        let row: Option<(i64,)> = sqlx::query_as(&query)
            .bind(item)
            .fetch_optional(store.pool())
            .await?;
        Ok(row.map_or(0, |(available,)| available))
    }
}

#[es_core::async_trait]
impl PgProjection for PgStockLevels {
    type Event = ItemEvent;

    fn name(&self) -> &str {
        "stock-levels"
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: ItemEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let Some(item) = record.stream_id.aggregate_id() else {
            return Ok(());
        };
        sqlx::query(&format!(
            "INSERT INTO \"{}\".stock_levels (item, available) VALUES ($1, $2)
             ON CONFLICT (item) DO UPDATE SET available = stock_levels.available + EXCLUDED.available",
            self.schema
        ))
        .bind(item)
        .bind(change(&event))
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

async fn in_memory() -> Result<(), Error> {
    println!("Store and read model: in memory.\n");
    let store = InMemoryEventStore::new();
    let levels = StockLevels::default();
    let running = ProjectionRunner::new(store.clone())
        .with_projection(levels.clone(), store.clone(), ProjectionOptions::default())
        .start();
    let items = repository(&store);
    let item = "widget";
    let expected = story(&store, &items, &running, item).await?;
    let read = levels.available(item)?;
    running.shutdown().await;
    check(item, expected, read)
}

async fn on_postgres(url: &str) -> Result<(), Error> {
    let schema = std::env::var("INVENTORY_SCHEMA").unwrap_or_else(|_| "inventory".to_owned());
    println!("Store and read model: PostgreSQL, schema `{schema}`.\n");
    let store = PgEventStore::builder().schema(&schema).connect(url).await?;
    store.migrate().await?;
    let levels = PgStockLevels { schema };
    levels.create_table(&store).await?;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(
            &store,
            levels.clone(),
            ProjectionOptions::default(),
        ))
        .start();
    let items = repository(&store);
    let item = "widget";
    let expected = story(&store, &items, &running, item).await?;
    let read = levels.available(&store, item).await?;
    running.shutdown().await;
    check(item, expected, read)
}

fn repository<S: EventStore + SnapshotStore + Clone + 'static>(store: &S) -> Repository<Item, S> {
    Repository::<Item, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::every(2))
}

/// The warehouse's day; returns the units the item has available according to the aggregate.
async fn story<S: EventStore + Clone + 'static>(
    store: &S,
    items: &Repository<Item, S>,
    running: &RunningProjections,
    item: &str,
) -> Result<u64, Error> {
    if items.load(item).await?.version.get() == 0 {
        let stream = Repository::<Item, S>::stream_id(item)?;
        // A delivery booked by release 1, in the shape it wrote then.
        let old = NewEvent::new("Received", 1, serde_json::json!({ "qty": 10 }));
        store
            .append(&stream, ExpectedVersion::NoStream, vec![old])
            .await?;
        println!("release 1 booked in 10 units (stored as `Received` v1)");
    }
    let request = Metadata::new();
    let receive = ItemCommand::Receive {
        quantity: 5,
        lot: "2026-12-A".into(),
    };
    items.execute(item, &receive, request.clone()).await?;
    let order = format!("order-{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    let reserve = ItemCommand::Reserve {
        order: order.clone(),
        quantity: 3,
    };
    let done = items.execute(item, &reserve, request.clone()).await?;
    println!(
        "{order} reserved 3: {} on hand, {} reserved, {} available",
        done.state.on_hand,
        done.state.reserved,
        done.state.available()
    );

    let too_many = ItemCommand::Reserve {
        order: "order-greedy".into(),
        quantity: done.state.available() + 1,
    };
    match items.execute(item, &too_many, request).await {
        Err(error) => println!("refused: {error}"),
        Ok(_) => return Err("reserving more than is available was accepted".into()),
    }

    // Read your own write: wait until the read model has passed the reservation's position.
    if let Some(position) = done.position() {
        running.wait_for("stock-levels", position, WAIT).await?;
    }
    items.flush_snapshots().await;
    Ok(done.state.available())
}

fn check(item: &str, expected: u64, read: i64) -> Result<(), Error> {
    println!("read model: {item} has {read} available");
    if i64::try_from(expected)? == read {
        println!("\nThe read model agrees with the aggregate.");
        Ok(())
    } else {
        Err(format!("the read model says {read}, the aggregate {expected}").into())
    }
}
