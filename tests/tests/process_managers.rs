//! The order process manager end to end, in memory and on PostgreSQL: happy path, compensation, timeout and out-of-stock
//! orders interleaved; every event delivered twice gives exactly the streams of a clean run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use es_core::evolution::EventCatalog;
use es_core::process::{ProcessRunner, ProcessStore};
use es_core::projection::{CheckpointStore, DeadLetterStore, HandlerError, ProjectionOptions};
use es_core::{EventStore, Metadata, Position, Projection, ProjectionRunner, RecordedEvent};
use es_memory::InMemoryEventStore;
use examples::shop::{
    OrderCommand, OrderPlaced, OrderProcess, OrderProcessState, OrderStatus, PaymentCommand,
    ShopRouter, Stage, StockCommand,
};
use tests::{all_streams, pg_store};

const WAIT: Duration = Duration::from_secs(60);

/// Delivers every event to the wrapped projection twice.
struct Twice<P>(P);

#[async_trait]
impl<P: Projection> Projection for Twice<P> {
    type Event = P::Event;
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn handle(&self, event: P::Event, record: &RecordedEvent) -> Result<(), HandlerError> {
        let again = record.decode::<P::Event>()?;
        self.0.handle(event, record).await?;
        self.0.handle(again, record).await
    }
}

/// Drives the process manager: waits for it, fires its timers.
#[async_trait]
trait Driver: Send + Sync {
    async fn wait_for(&self, position: Position);
    async fn fire_due_timers(&self, now: chrono::DateTime<Utc>) -> usize;
    async fn stop(self: Box<Self>);
}

/// The runner as users start it.
struct Started(es_core::process::RunningProcess);

#[async_trait]
impl Driver for Started {
    async fn wait_for(&self, position: Position) {
        self.0.wait_for(position, WAIT).await.unwrap();
    }
    async fn fire_due_timers(&self, now: chrono::DateTime<Utc>) -> usize {
        // A failed step leaves its timer due, as the timer task's next poll would find it.
        for _ in 0..5 {
            if let Ok(fired) = self.0.fire_due_timers(now).await {
                return fired;
            }
        }
        panic!("firing timers kept failing");
    }
    async fn stop(self: Box<Self>) {
        self.0.shutdown().await;
    }
}

/// The runner's projection behind [`Twice`], on a projection runner of the test's own.
struct Doubled<S: EventStore + Clone + 'static> {
    runner: ProcessRunner<OrderProcess, ShopRouter<S>, S>,
    projections: es_core::projection::RunningProjections,
}

#[async_trait]
impl<S> Driver for Doubled<S>
where
    S: EventStore + ProcessStore + Clone + 'static,
{
    async fn wait_for(&self, position: Position) {
        self.projections
            .wait_for("order-process", position, WAIT)
            .await
            .unwrap();
    }
    async fn fire_due_timers(&self, now: chrono::DateTime<Utc>) -> usize {
        let fired = self.runner.fire_due_timers(now).await.unwrap();
        assert_eq!(
            self.runner.fire_due_timers(now).await.unwrap(),
            0,
            "a fired timer fires once"
        );
        fired
    }
    async fn stop(self: Box<Self>) {
        self.projections.shutdown().await;
    }
}

/// Waits until the process manager has handled every event, including those its own commands keep adding.
async fn settle<S: EventStore>(store: &S, driver: &dyn Driver) {
    // The head can lag behind commits while other transactions in the cluster are open, so a quiet moment is
    // only trusted once it lasts: the head unchanged over three looks 100 ms apart.
    let (mut last, mut quiet) = (None, 0);
    while quiet < 3 {
        let head = store.head().await.unwrap();
        if head == last {
            quiet += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        quiet = 0;
        if let Some(head) = head {
            driver.wait_for(head).await;
        }
        last = head;
    }
}

fn fast() -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(10)
        .backoff(Duration::from_millis(5), Duration::from_millis(50))
}

/// A process store that loses the first save of every step, as a crash between sending the step's commands and
/// saving its state would: the step runs again and re-sends the same commands.
#[derive(Clone)]
struct LosesFirstSave<S> {
    inner: S,
    lost: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

#[async_trait]
impl<S: ProcessStore> ProcessStore for LosesFirstSave<S> {
    async fn load_process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<es_core::process::ProcessRecord>, es_core::StoreError> {
        self.inner.load_process(process, instance).await
    }
    async fn save_process(
        &self,
        process: &str,
        instance: &str,
        expected: Option<u64>,
        record: es_core::process::ProcessRecord,
        timers: es_core::process::TimerChanges,
    ) -> Result<(), es_core::StoreError> {
        let step = format!(
            "{instance}/{}",
            record.handled.last().cloned().unwrap_or_default()
        );
        if self.lost.lock().unwrap().insert(step) {
            return Err(es_core::StoreError::Backend {
                operation: "save_process",
                source: "crashed before saving".into(),
            });
        }
        self.inner
            .save_process(process, instance, expected, record, timers)
            .await
    }
    async fn due_timers(
        &self,
        process: &str,
        now: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<es_core::process::DueTimer>, es_core::StoreError> {
        self.inner.due_timers(process, now, limit).await
    }
    async fn list_processes(
        &self,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<es_core::process::ProcessInstance>, es_core::StoreError> {
        self.inner.list_processes(process, limit).await
    }
}

/// How the process manager is fed.
#[derive(Clone, Copy)]
enum Mode {
    /// As users start it.
    Clean,
    /// Every event delivered twice.
    Twice,
    /// Every step's first state save lost (a crash after its commands went out).
    CrashBeforeSave,
}

/// Four orders at once — shipped, payment failed, payment timed out, out of stock — and the checks of their ends.
async fn run_shop<S>(store: S, mode: Mode) -> BTreeMap<String, Vec<(String, serde_json::Value)>>
where
    S: EventStore
        + EventCatalog
        + ProcessStore
        + CheckpointStore
        + DeadLetterStore
        + Clone
        + 'static,
{
    let router = ShopRouter::new(store.clone());
    let (orders, stock, payments) = (
        router.orders.clone(),
        router.stock.clone(),
        router.payments.clone(),
    );
    stock
        .execute(
            "book",
            &StockCommand::Restock { quantity: 10 },
            Metadata::new(),
        )
        .await
        .unwrap();
    let driver: Box<dyn Driver> = match mode {
        Mode::Clean => {
            let runner = ProcessRunner::new(OrderProcess, router, store.clone())
                .options(fast())
                .timer_poll(Duration::from_secs(3600));
            Box::new(Started(runner.start(store.clone(), store.clone())))
        }
        Mode::Twice => {
            let runner = ProcessRunner::new(OrderProcess, router, store.clone())
                .options(fast())
                .timer_poll(Duration::from_secs(3600));
            let projections = ProjectionRunner::new(store.clone())
                .with_projection(Twice(runner.projection()), store.clone(), fast())
                .start();
            Box::new(Doubled {
                runner,
                projections,
            })
        }
        Mode::CrashBeforeSave => {
            let flaky = LosesFirstSave {
                inner: store.clone(),
                lost: Default::default(),
            };
            let runner = ProcessRunner::new(OrderProcess, router, flaky)
                .options(fast())
                .timer_poll(Duration::from_secs(3600));
            Box::new(Started(runner.start(store.clone(), store.clone())))
        }
    };
    for (order, quantity) in [("o-1", 2), ("o-2", 1), ("o-3", 3), ("o-4", 100)] {
        let place = OrderCommand::Place(OrderPlaced {
            order_id: order.into(),
            sku: "book".into(),
            quantity,
            amount: 1_000,
        });
        orders
            .execute(order, &place, Metadata::new())
            .await
            .unwrap();
    }
    settle(&store, driver.as_ref()).await;
    payments
        .execute("o-1", &PaymentCommand::Confirm, Metadata::new())
        .await
        .unwrap();
    payments
        .execute(
            "o-2",
            &PaymentCommand::Decline {
                reason: "card declined".into(),
            },
            Metadata::new(),
        )
        .await
        .unwrap();
    settle(&store, driver.as_ref()).await;
    // Half a minute passes without an answer for o-3.
    let fired = driver
        .fire_due_timers(Utc::now() + chrono::Duration::seconds(31))
        .await;
    assert_eq!(fired, 1, "only o-3's payment deadline is still pending");
    settle(&store, driver.as_ref()).await;

    let status = |order: &'static str| {
        let orders = orders.clone();
        async move { orders.load(order).await.unwrap().state.status }
    };
    assert_eq!(status("o-1").await, OrderStatus::Shipped);
    assert_eq!(
        status("o-2").await,
        OrderStatus::Cancelled("payment failed: card declined".into())
    );
    assert_eq!(
        status("o-3").await,
        OrderStatus::Cancelled("payment did not answer in time".into())
    );
    assert_eq!(
        status("o-4").await,
        OrderStatus::Cancelled("insufficient stock: 4 available, 100 requested".into())
    );
    let book = stock.load("book").await.unwrap().state;
    assert_eq!(
        book.available, 8,
        "only the shipped order keeps its stock: {book:?}"
    );
    assert_eq!(book.reserved.keys().collect::<Vec<_>>(), ["o-1"]);

    // Each instance kept its own state, though their events interleaved.
    for (order, stage) in [
        ("o-1", Stage::Shipped),
        ("o-2", Stage::Cancelled),
        ("o-3", Stage::Cancelled),
    ] {
        let record = store
            .load_process("order-process", order)
            .await
            .unwrap()
            .unwrap();
        let state: OrderProcessState = serde_json::from_value(record.state).unwrap();
        assert_eq!(
            (state.order.unwrap().order_id.as_str(), state.stage),
            (order, stage)
        );
    }
    driver.stop().await;
    all_streams(&store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_order_process_manager_ships_compensates_and_times_out_in_memory() {
    run_shop(InMemoryEventStore::new(), Mode::Clean).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_and_crashed_steps_give_the_streams_of_a_clean_run_in_memory() {
    let clean = run_shop(InMemoryEventStore::new(), Mode::Clean).await;
    let twice = run_shop(InMemoryEventStore::new(), Mode::Twice).await;
    assert_eq!(twice, clean);
    let crashed = run_shop(InMemoryEventStore::new(), Mode::CrashBeforeSave).await;
    assert_eq!(crashed, clean, "re-sent commands must not execute twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_and_crashed_steps_give_the_streams_of_a_clean_run_on_postgres() {
    let clean = run_shop(pg_store().await, Mode::Clean).await;
    let twice = run_shop(pg_store().await, Mode::Twice).await;
    assert_eq!(twice, clean);
    let crashed = run_shop(pg_store().await, Mode::CrashBeforeSave).await;
    assert_eq!(crashed, clean, "re-sent commands must not execute twice");
}

/// The process store's compare-and-set: a save wins only on the version it read, and its timer changes are
/// written with it or not at all.
async fn process_saves_are_compare_and_set_with_their_timers<S: ProcessStore>(store: S) {
    use es_core::StoreError;
    use es_core::process::{ProcessRecord, Timer, TimerChanges};
    let at = chrono::Utc::now() - chrono::Duration::seconds(1);
    let record = |version: u64| ProcessRecord {
        state: serde_json::json!({ "v": version }),
        version,
        handled: vec![format!("input-{version}")],
    };
    let set = |name: &str| TimerChanges {
        set: vec![Timer {
            name: name.to_owned(),
            at,
        }],
        remove: Vec::new(),
    };
    let conflict = |result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::ProcessConflict { .. })),
            "{result:?}"
        );
    };
    store
        .save_process("p", "i", None, record(1), set("first"))
        .await
        .unwrap();
    conflict(
        store
            .save_process("p", "i", None, record(1), set("lost"))
            .await,
    );
    store
        .save_process("p", "i", Some(1), record(2), set("second"))
        .await
        .unwrap();
    conflict(
        store
            .save_process("p", "i", Some(1), record(2), set("stale"))
            .await,
    );
    conflict(
        store
            .save_process("p", "missing", Some(1), record(2), set("nowhere"))
            .await,
    );
    let cancel = TimerChanges {
        set: vec![Timer {
            name: "third".to_owned(),
            at,
        }],
        remove: vec!["first".to_owned(), "third".to_owned()],
    };
    store
        .save_process("p", "i", Some(2), record(3), cancel)
        .await
        .unwrap();
    let loaded = store.load_process("p", "i").await.unwrap().unwrap();
    assert_eq!(
        (loaded.version, loaded.state),
        (3, serde_json::json!({ "v": 3 }))
    );
    let mut due: Vec<String> = store
        .due_timers("p", chrono::Utc::now(), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.timer.name)
        .collect();
    due.sort();
    assert_eq!(due, ["second", "third"]);
}

#[tokio::test]
async fn memory_process_saves_are_compare_and_set_with_their_timers() {
    process_saves_are_compare_and_set_with_their_timers(InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn postgres_process_saves_are_compare_and_set_with_their_timers() {
    process_saves_are_compare_and_set_with_their_timers(pg_store().await).await;
}
