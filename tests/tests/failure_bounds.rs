//! A failing handler and an event that does not decode, in any order and batch shape, end in the failure policy's
//! outcome with bounded work, on every worker (in memory, PostgreSQL one event at a time and batched, SQLite):
//! - a poison event before an undecodable one in the same batch is not a livelock (the transactional workers used
//!   to find the undecodable one first, then the poison while re-applying the events before it, and start over);
//! - `max_attempts(n)` is the number of handler calls for the failing event, the first (batch) call included;
//! - a failed redrive records the new error and counts its attempt;
//! - the dead letter of an undecodable event does not quote the payload's values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{
    FailurePolicy, HandlerError, ProjectionOptions, ProjectionState, RunningProjections,
};
use es_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, Projection, ProjectionRunner,
    RecordedEvent, StreamId,
};
use es_memory::InMemoryEventStore;
use es_postgres::{PgProjection, PgProjectionWorker};
use es_sqlite::{SqliteProjection, SqliteProjectionWorker};
use tests::ledger::{LedgerEvent, POISON};
use tests::{pg_store, sqlite_store};

/// Bounds the whole run of a projection over the few events here; a livelock never gets there.
const WAIT: Duration = Duration::from_secs(30);
const ATTEMPTS: u32 = 3;
const SECRET: &str = "4111-1111-1111-1111";

/// Counts the handler calls per event; fails every call for [`POISON`] while poisoned, naming the call.
#[derive(Clone)]
struct Calls {
    calls: Arc<Mutex<HashMap<EventId, u32>>>,
    poisoned: Arc<AtomicBool>,
    /// PostgreSQL: handle each batch in one call that fails as a whole without naming the event.
    batched: bool,
}

impl Calls {
    fn new(batched: bool) -> Self {
        Self {
            calls: Arc::default(),
            poisoned: Arc::new(AtomicBool::new(true)),
            batched,
        }
    }

    fn of(&self, event: EventId) -> u32 {
        self.calls.lock().unwrap().get(&event).copied().unwrap_or(0)
    }

    fn call(&self, event: LedgerEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        let LedgerEvent::Posted { amount } = event;
        let mut calls = self.calls.lock().unwrap();
        let call = calls.entry(record.event_id).or_default();
        *call += 1;
        match amount == POISON && self.poisoned.load(Ordering::SeqCst) {
            true => Err(format!("poisoned posting (call {call})").into()),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Projection for Calls {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "calls"
    }
    async fn handle(&self, event: LedgerEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        self.call(event, record)
    }
}

#[async_trait]
impl PgProjection for Calls {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "calls"
    }
    async fn handle(
        &self,
        _: &mut sqlx::PgConnection,
        event: LedgerEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        self.call(event, record)
    }
    async fn handle_batch(
        &self,
        tx: &mut sqlx::PgConnection,
        events: Vec<(LedgerEvent, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        let mut failed = None;
        for (event, record) in events {
            match self.batched {
                true => failed = failed.or(self.call(event, record).err()),
                false => PgProjection::handle(self, tx, event, record).await?,
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl SqliteProjection for Calls {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "calls"
    }
    async fn handle(
        &self,
        _: &mut sqlx::SqliteConnection,
        event: LedgerEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        self.call(event, record)
    }
}

fn options(policy: FailurePolicy) -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(100)
        .max_attempts(ATTEMPTS)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .on_failure(policy)
}

/// The events the projection meets in one batch: a good posting and the poison in `acct-1`, a posting whose
/// payload does not fit the type (a string where a number goes) in `acct-2`, a good posting in `acct-3`.
struct Written {
    poison: EventId,
    undecodable: EventId,
    good: Vec<EventId>,
    last: Position,
}

async fn write(store: &impl EventStore) -> Written {
    let posted = |amount| {
        NewEvent::from_domain(&LedgerEvent::Posted { amount }, Default::default()).unwrap()
    };
    let append = |stream: &'static str, events: Vec<NewEvent>| async move {
        store
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap()
    };
    let (first, poison) = (posted(1), posted(POISON));
    let (first_id, poison_id) = (first.event_id, poison.event_id);
    append("acct-1", vec![first, poison]).await;
    let undecodable = NewEvent::new("Posted", 1, serde_json::json!({ "amount": SECRET }));
    let undecodable_id = undecodable.event_id;
    append("acct-2", vec![undecodable]).await;
    let last = posted(3);
    let last_id = last.event_id;
    let written = append("acct-3", vec![last]).await;
    Written {
        poison: poison_id,
        undecodable: undecodable_id,
        good: vec![first_id, last_id],
        last: written.last_position,
    }
}

/// Runs the checks on a runner over the written events: both failing events end as dead letters after exactly
/// `ATTEMPTS` calls, the good ones are handled once, a failed redrive records its error and attempt, and the
/// undecodable event's letter does not quote its payload.
async fn check(running: RunningProjections, calls: Calls, written: Written) {
    running
        .wait_for("calls", written.last, WAIT)
        .await
        .expect("the projection passes the poison and the undecodable event within the bound");
    assert_eq!(running.state("calls").unwrap(), ProjectionState::Running);
    assert_eq!(
        calls.of(written.poison),
        ATTEMPTS,
        "max_attempts counts every call, the batch's included"
    );
    // A transactional worker may call the handler for a good event in a batch that rolled back, then again.
    for good in &written.good {
        assert!(calls.of(*good) >= 1);
    }
    let letters = running.dead_letters("calls").await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let poison = letters
        .iter()
        .find(|l| l.event_id == written.poison)
        .unwrap();
    assert_eq!(poison.attempts, ATTEMPTS);
    assert!(
        poison.error.contains(&format!("(call {ATTEMPTS})")),
        "{poison:?}"
    );
    let undecodable = letters
        .iter()
        .find(|l| l.event_id == written.undecodable)
        .unwrap();
    assert_eq!(undecodable.attempts, ATTEMPTS);
    assert!(
        undecodable.error.contains("does not decode"),
        "{undecodable:?}"
    );
    assert!(undecodable.error.contains("acct-2"), "{undecodable:?}");
    assert!(!undecodable.error.contains(SECRET), "{undecodable:?}");
    assert!(!undecodable.error.contains("4111"), "{undecodable:?}");

    // A redrive that fails again: the letter stays, with the new error, one more attempt, a later time.
    assert!(!running.redrive_one("calls", written.poison).await.unwrap());
    let letters = running.dead_letters("calls").await.unwrap();
    let again = letters
        .iter()
        .find(|l| l.event_id == written.poison)
        .unwrap();
    assert_eq!(again.attempts, ATTEMPTS + 1);
    assert!(
        again.error.contains(&format!("(call {})", ATTEMPTS + 1)),
        "{again:?}"
    );
    assert!(again.failed_at >= poison.failed_at);
    assert_eq!(calls.of(written.poison), ATTEMPTS + 1);

    calls.poisoned.store(false, Ordering::SeqCst);
    assert!(running.redrive_one("calls", written.poison).await.unwrap());
    let letters = running.dead_letters("calls").await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    running.shutdown().await;
}

#[tokio::test]
async fn in_memory_a_poison_and_an_undecodable_event_in_one_batch_end_as_dead_letters() {
    for policy in [FailurePolicy::DeadLetter, FailurePolicy::ParkStream] {
        let store = InMemoryEventStore::new();
        let written = write(&store).await;
        let calls = Calls::new(false);
        let running = ProjectionRunner::new(store.clone())
            .with_projection(calls.clone(), store.clone(), options(policy))
            .start();
        check(running, calls, written).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_poison_and_an_undecodable_event_in_one_batch_end_as_dead_letters() {
    for batched in [false, true] {
        for policy in [FailurePolicy::DeadLetter, FailurePolicy::ParkStream] {
            let store = pg_store().await;
            let written = write(&store).await;
            let calls = Calls::new(batched);
            let running = ProjectionRunner::new(store.clone())
                .with(PgProjectionWorker::new(
                    &store,
                    calls.clone(),
                    options(policy),
                ))
                .start();
            check(running, calls, written).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_poison_and_an_undecodable_event_in_one_batch_end_as_dead_letters() {
    for policy in [FailurePolicy::DeadLetter, FailurePolicy::ParkStream] {
        let store = sqlite_store().await;
        let written = write(&store).await;
        let calls = Calls::new(false);
        let running = ProjectionRunner::new(store.clone())
            .with(SqliteProjectionWorker::new(
                &store,
                calls.clone(),
                options(policy),
            ))
            .start();
        check(running, calls, written).await;
    }
}

#[tokio::test]
async fn a_projection_halted_by_an_undecodable_event_does_not_quote_its_payload() {
    let store = InMemoryEventStore::new();
    let written = write(&store).await;
    let calls = Calls::new(false);
    calls.poisoned.store(false, Ordering::SeqCst);
    let running = ProjectionRunner::new(store.clone())
        .with_projection(calls.clone(), store.clone(), options(FailurePolicy::Stop))
        .start();
    let halted = running.wait_for("calls", written.last, WAIT).await;
    assert!(halted.is_err());
    match running.state("calls").unwrap() {
        ProjectionState::Failed { error } => {
            assert!(error.contains("does not decode"), "{error}");
            assert!(!error.contains(SECRET), "{error}");
        }
        other => panic!("expected the projection to halt, got {other:?}"),
    }
}
