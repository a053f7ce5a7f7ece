//! An aggregate's event type declares the aggregate's category (`#[event(aggregate = ..)]`, required to build its
//! repository), so a projection of that type reads only its aggregate's streams: a same-named event of another
//! aggregate, stored in another shape, is not its concern and does not halt it. On every store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{
    CheckpointStore, DeadLetterStore, HandlerError, ProjectionOptions, ProjectionState,
};
use es_core::{
    Aggregate, DomainEvent, EventStore, Metadata, Position, Projection, ProjectionRunner,
    RecordedEvent, Repository,
};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, DomainEvent)]
#[event(aggregate = Order)]
enum OrderEvent {
    Placed { item: String },
}

#[derive(Default, Clone)]
struct Order;

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    type Event = OrderEvent;
    type Command = String;
    type Error = std::convert::Infallible;
    fn handle(&self, item: &String) -> Result<Vec<OrderEvent>, Self::Error> {
        Ok(vec![OrderEvent::Placed { item: item.clone() }])
    }
    fn apply(self, _: &OrderEvent) -> Self {
        self
    }
}

/// Another aggregate's event of the same name, in a shape an `OrderEvent` cannot read.
#[derive(Debug, PartialEq, DomainEvent)]
#[event(aggregate = Parcel)]
enum ParcelEvent {
    Placed { weight: u32 },
}

#[derive(Default, Clone)]
struct Parcel;

impl Aggregate for Parcel {
    const CATEGORY: &'static str = "parcel";
    type Event = ParcelEvent;
    type Command = u32;
    type Error = std::convert::Infallible;
    fn handle(&self, weight: &u32) -> Result<Vec<ParcelEvent>, Self::Error> {
        Ok(vec![ParcelEvent::Placed { weight: *weight }])
    }
    fn apply(self, _: &ParcelEvent) -> Self {
        self
    }
}

/// The items of every order placed, with the projection's default categories.
#[derive(Clone, Default)]
struct Orders(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl Projection for Orders {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        "orders"
    }

    async fn handle(&self, event: OrderEvent, _: &RecordedEvent) -> Result<(), HandlerError> {
        let OrderEvent::Placed { item } = event;
        self.0.lock().unwrap().push(item);
        Ok(())
    }
}

async fn a_projection_reads_only_its_aggregates_category<S>(store: S)
where
    S: EventStore + CheckpointStore + DeadLetterStore + Clone + 'static,
{
    assert_eq!(OrderEvent::CATEGORIES, ["order"]);
    let orders = Repository::<Order, _>::new(store.clone());
    let parcels = Repository::<Parcel, _>::new(store.clone());
    orders
        .execute("1", &"tea".to_owned(), Metadata::new())
        .await
        .unwrap();
    parcels.execute("1", &3, Metadata::new()).await.unwrap();
    orders
        .execute("2", &"milk".to_owned(), Metadata::new())
        .await
        .unwrap();
    let last = store
        .read_all(Position::START, usize::MAX)
        .await
        .unwrap()
        .last()
        .unwrap()
        .position;

    let projection = Orders::default();
    let running = ProjectionRunner::new(store.clone())
        .with_projection(projection.clone(), store, ProjectionOptions::default())
        .start();
    running.wait_for("orders", last, WAIT).await.unwrap();
    assert_eq!(*projection.0.lock().unwrap(), ["tea", "milk"]);
    let status = running.status("orders").await.unwrap();
    assert_eq!(status.state, ProjectionState::Running);
    assert_eq!(status.dead_letters, 0);
    running.shutdown().await;
}

#[tokio::test]
async fn in_memory() {
    a_projection_reads_only_its_aggregates_category(es_memory::InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn on_sqlite() {
    a_projection_reads_only_its_aggregates_category(tests::sqlite_store().await).await;
}

#[tokio::test]
async fn on_postgres() {
    a_projection_reads_only_its_aggregates_category(tests::pg_store().await).await;
}
