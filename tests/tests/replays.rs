//! Rebuilds that cannot double-count, on every worker (memory, PostgreSQL, SQLite): a projection that does not say
//! how its read model resets has its rebuild refused, a reset back is refused unless its handlers are idempotent,
//! each with a typed error naming the projection, and nothing changes — the read model keeps counting right.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use es_core::backend::WorkerError;
use es_core::projection::{
    HandlerError, NoReset, ProjectionOptions, Replay, RunnerError, RunningProjections,
};
use es_core::{
    DomainEvent, EventId, EventStore, ExpectedVersion, NewEvent, Position, Projection,
    ProjectionRunner, RecordedEvent, StreamId,
};
use es_memory::InMemoryEventStore;
use es_postgres::{PgProjection, PgProjectionWorker};
use es_sqlite::{SqliteProjection, SqliteProjectionWorker};

const WAIT: Duration = Duration::from_secs(10);

#[derive(DomainEvent)]
#[event(category = "tick")]
enum Tick {
    Ticked { amount: i64 },
}

/// What the read model says about replays.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Nothing: no reset, not idempotent.
    Silent,
    /// `reset` empties it.
    Resets,
    /// An event applied twice counts once (the ids it saw).
    Idempotent,
}

/// A counter of ticks, in memory whatever the worker: what matters is whether events reach it twice.
#[derive(Clone)]
struct Counter {
    name: &'static str,
    mode: Mode,
    total: Arc<Mutex<i64>>,
    seen: Arc<Mutex<HashSet<EventId>>>,
}

impl Counter {
    fn new(name: &'static str, mode: Mode) -> Self {
        Self {
            name,
            mode,
            total: Arc::default(),
            seen: Arc::default(),
        }
    }

    fn total(&self) -> i64 {
        *self.total.lock().unwrap()
    }

    fn apply(&self, Tick::Ticked { amount }: Tick, record: &RecordedEvent) {
        let first = self.seen.lock().unwrap().insert(record.event_id);
        if first || self.mode != Mode::Idempotent {
            *self.total.lock().unwrap() += amount;
        }
    }

    fn reset(&self) -> Result<(), HandlerError> {
        match self.mode {
            Mode::Resets => {
                *self.total.lock().unwrap() = 0;
                self.seen.lock().unwrap().clear();
                Ok(())
            }
            Mode::Silent | Mode::Idempotent => Err(Box::new(NoReset)),
        }
    }
}

#[es_core::async_trait]
impl Projection for Counter {
    type Event = Tick;
    fn name(&self) -> &str {
        self.name
    }
    async fn handle(&self, event: Tick, record: &RecordedEvent) -> Result<(), HandlerError> {
        self.apply(event, record);
        Ok(())
    }
    async fn reset(&self) -> Result<(), HandlerError> {
        Counter::reset(self)
    }
    fn idempotent(&self) -> bool {
        self.mode == Mode::Idempotent
    }
}

#[es_core::async_trait]
impl PgProjection for Counter {
    type Event = Tick;
    fn name(&self) -> &str {
        self.name
    }
    async fn handle(
        &self,
        _: &mut es_postgres::sqlx::PgConnection,
        event: Tick,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        self.apply(event, record);
        Ok(())
    }
    async fn reset(&self, _: &mut es_postgres::sqlx::PgConnection) -> Result<(), HandlerError> {
        Counter::reset(self)
    }
    fn idempotent(&self) -> bool {
        self.mode == Mode::Idempotent
    }
}

#[es_core::async_trait]
impl SqliteProjection for Counter {
    type Event = Tick;
    fn name(&self) -> &str {
        self.name
    }
    async fn handle(
        &self,
        _: &mut sqlx::SqliteConnection,
        event: Tick,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        self.apply(event, record);
        Ok(())
    }
    async fn reset(&self, _: &mut sqlx::SqliteConnection) -> Result<(), HandlerError> {
        Counter::reset(self)
    }
    fn idempotent(&self) -> bool {
        self.mode == Mode::Idempotent
    }
}

/// The three counters, and how each store's worker runs them.
struct Counters {
    silent: Counter,
    resets: Counter,
    idempotent: Counter,
}

impl Counters {
    fn new() -> Self {
        Self {
            silent: Counter::new("silent", Mode::Silent),
            resets: Counter::new("resets", Mode::Resets),
            idempotent: Counter::new("idempotent", Mode::Idempotent),
        }
    }

    fn all(&self) -> [&Counter; 3] {
        [&self.silent, &self.resets, &self.idempotent]
    }
}

async fn tick<S: EventStore>(store: &S, amount: i64) -> Position {
    let event = NewEvent::from_domain(&Tick::Ticked { amount }, Default::default()).unwrap();
    let stream = StreamId::new(format!("tick-{}", EventId::new())).unwrap();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap()
        .last_position
}

async fn caught_up(running: &RunningProjections, counters: &Counters, at: Position) {
    for counter in counters.all() {
        running.wait_for(counter.name, at, WAIT).await.unwrap();
    }
}

fn refused(result: Result<(), RunnerError>, name: &str) -> Replay {
    match result {
        Err(RunnerError::Worker(WorkerError::ReplayRefused { projection, replay })) => {
            assert_eq!(projection, name);
            replay
        }
        other => panic!("{name}: expected a refused replay, got {other:?}"),
    }
}

/// Five ticks of 1 counted; a rebuild and a reset back of the silent counter refused with nothing changed; the
/// counter that resets rebuilds to the same total; the idempotent one takes a reset back without counting twice.
async fn scenario<S: EventStore + Clone + 'static>(
    store: S,
    running: RunningProjections,
    counters: Counters,
) {
    let mut first = None;
    let mut last = Position::START;
    for _ in 0..5 {
        last = tick(&store, 1).await;
        first.get_or_insert(last);
    }
    let first = first.unwrap();
    caught_up(&running, &counters, last).await;
    assert!(counters.all().iter().all(|c| c.total() == 5));

    assert_eq!(
        refused(running.rebuild("silent").await, "silent"),
        Replay::Rebuild
    );
    let back = refused(running.reset_to("silent", first).await, "silent");
    assert!(
        matches!(back, Replay::ResetBack { to, checkpoint } if to == first && checkpoint == last),
        "{back:?}"
    );
    let back = refused(running.reset_to("resets", first).await, "resets"); // resetting is not replaying twice
    assert!(matches!(back, Replay::ResetBack { .. }), "{back:?}");
    let status = running.status("silent").await.unwrap();
    assert_eq!(
        status.checkpoint,
        Some(last),
        "a refused replay leaves the checkpoint where it was"
    );

    running.rebuild("resets").await.unwrap();
    running.rebuild("idempotent").await.unwrap();
    running.reset_to("idempotent", first).await.unwrap();
    let last = tick(&store, 1).await;
    caught_up(&running, &counters, last).await;
    for counter in counters.all() {
        assert_eq!(
            counter.total(),
            6,
            "{}: every tick counted once",
            counter.name
        );
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_refuses_replays_that_would_count_twice() {
    let store = InMemoryEventStore::new();
    let counters = Counters::new();
    let mut runner = ProjectionRunner::new(store.clone());
    for counter in counters.all() {
        runner =
            runner.with_projection(counter.clone(), store.clone(), ProjectionOptions::default());
    }
    scenario(store, runner.start(), counters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_refuses_replays_that_would_count_twice() {
    let store = tests::pg_store().await;
    let counters = Counters::new();
    let mut runner = ProjectionRunner::new(store.clone());
    for counter in counters.all() {
        runner = runner.with(PgProjectionWorker::new(
            &store,
            counter.clone(),
            ProjectionOptions::default(),
        ));
    }
    scenario(store, runner.start(), counters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_refuses_replays_that_would_count_twice() {
    let store = tests::sqlite_store().await;
    let counters = Counters::new();
    let mut runner = ProjectionRunner::new(store.clone());
    for counter in counters.all() {
        runner = runner.with(SqliteProjectionWorker::new(
            &store,
            counter.clone(),
            ProjectionOptions::default(),
        ));
    }
    scenario(store, runner.start(), counters).await;
}
