//! The projection runner, in memory and on PostgreSQL: catch-up then live, exactly once, rebuild, poison events,
//! read-your-writes, concurrent writers, status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use es_core::projection::{FailurePolicy, ProjectionOptions, ProjectionState, RunnerError};
use es_core::{EventStore, ExpectedVersion, NewEvent, Position, ProjectionRunner, StreamId};
use es_memory::InMemoryEventStore;
use es_postgres::PgProjectionWorker;
use tests::ledger::{LedgerEvent, MemoryLedger, POISON, PgLedger, Totals, post};
use tests::pg_store;

const WAIT: Duration = Duration::from_secs(60);

fn fast() -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(100)
        .max_attempts(3)
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
}

fn merge(a: &Totals, b: &Totals) -> Totals {
    let mut sum = a.clone();
    for (stream, total) in &b.totals {
        *sum.totals.entry(stream.clone()).or_default() += total;
    }
    for (stream, count) in &b.counts {
        *sum.counts.entry(stream.clone()).or_default() += count;
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_catch_up_then_live_applies_every_event_once_and_rebuilds_the_same() {
    let store = InMemoryEventStore::new();
    let (before, _) = post(&store, "early", 1_000, 7, 9).await;
    let ledger = MemoryLedger::named("ledger");
    let running = ProjectionRunner::new(store.clone())
        .with_projection(ledger.clone(), store.clone(), fast())
        .start();
    let (during, last) = post(&store, "late", 1_000, 5, 3).await;
    running.wait_for("ledger", last, WAIT).await.unwrap();
    let expected = merge(&before, &during);
    assert_eq!(ledger.totals(), expected);
    let applied = ledger.applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 2_000);
    assert!(
        applied.values().all(|n| *n == 1),
        "an event was applied twice"
    );

    running.rebuild("ledger").await.unwrap();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(
        ledger.totals(),
        expected,
        "the rebuild differs from the incremental run"
    );
    let status = running.status("ledger").await.unwrap();
    assert_eq!(
        (status.state, status.checkpoint, status.lag_events),
        (ProjectionState::Running, Some(last), 0)
    );
    running.shutdown().await;
}

async fn poison(store: &InMemoryEventStore) -> Position {
    let event =
        NewEvent::from_domain(&LedgerEvent::Posted { amount: POISON }, Default::default()).unwrap();
    store
        .append(
            &StreamId::new("bad-1").unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap()
        .last_position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_event_is_parked_and_later_events_still_project_then_it_is_redriven() {
    let store = InMemoryEventStore::new();
    let ledger = MemoryLedger::named("ledger");
    let options = fast().on_failure(FailurePolicy::DeadLetter);
    let running = ProjectionRunner::new(store.clone())
        .with_projection(ledger.clone(), store.clone(), options)
        .start();
    let (first, _) = post(&store, "a", 50, 2, 5).await;
    let poisoned_at = poison(&store).await;
    let (second, last) = post(&store, "b", 50, 2, 5).await;
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(
        ledger.totals(),
        merge(&first, &second),
        "later events must still project"
    );

    let letters = running.dead_letters("ledger").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].position, letters[0].attempts), (poisoned_at, 3));
    assert!(
        letters[0].error.contains("poisoned posting in bad-1"),
        "{}",
        letters[0].error
    );
    assert_eq!(running.status("ledger").await.unwrap().dead_letters, 1);

    ledger.poisoned.store(false, Ordering::SeqCst);
    assert_eq!(running.redrive("ledger").await.unwrap(), (1, 0));
    assert!(running.dead_letters("ledger").await.unwrap().is_empty());
    assert_eq!(ledger.totals().totals["bad-1"], POISON);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_stop_a_poison_event_halts_only_its_projection_just_before_it() {
    let store = InMemoryEventStore::new();
    let stopping = MemoryLedger::named("stopping");
    let parking = MemoryLedger::named("parking");
    let running = ProjectionRunner::new(store.clone())
        .with_projection(
            stopping.clone(),
            store.clone(),
            fast().on_failure(FailurePolicy::Stop),
        )
        .with_projection(
            parking.clone(),
            store.clone(),
            fast().on_failure(FailurePolicy::DeadLetter),
        )
        .start();
    let (_, before) = post(&store, "a", 30, 2, 3).await;
    let poisoned_at = poison(&store).await;
    let (_, last) = post(&store, "b", 30, 2, 3).await;

    let error = running.wait_for("stopping", last, WAIT).await.unwrap_err();
    let RunnerError::NotRunning {
        state: ProjectionState::Failed { error },
        ..
    } = error
    else {
        panic!("expected the projection to fail, got {error:?}")
    };
    assert!(
        error.contains("bad-1@1")
            && error.contains(&poisoned_at.to_string())
            && error.contains("after 3 attempts"),
        "{error}"
    );
    let status = running.status("stopping").await.unwrap();
    assert_eq!(
        status.checkpoint,
        Some(before),
        "the checkpoint must stay just before the poison event"
    );
    assert!(status.lag_events > 0);
    running.wait_for("parking", last, WAIT).await.unwrap();
    assert_eq!(stopping.totals().counts.values().sum::<i64>(), 30);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_your_writes_in_memory_and_on_postgres() {
    let memory = InMemoryEventStore::new();
    let ledger = MemoryLedger::named("ledger");
    let running = ProjectionRunner::new(memory.clone())
        .with_projection(ledger.clone(), memory.clone(), fast())
        .start();
    for i in 0..50 {
        let (_, at) = post(&memory, &format!("m{i}"), 1, 1, 1).await;
        running.wait_for("ledger", at, WAIT).await.unwrap();
        assert_eq!(
            ledger.totals().counts.get(&format!("m{i}-0")),
            Some(&1),
            "write {i} not visible"
        );
    }
    running.shutdown().await;

    let store = pg_store().await;
    let ledger = PgLedger::create(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(&store, ledger.clone(), fast()))
        .start();
    for i in 0..30 {
        let (_, at) = post(&store, &format!("p{i}"), 1, 1, 1).await;
        running.wait_for("ledger", at, WAIT).await.unwrap();
        assert_eq!(
            ledger.totals(&store).await.counts.get(&format!("p{i}-0")),
            Some(&1),
            "write {i} not visible"
        );
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_catch_up_then_live_with_eight_writers_is_exactly_once_and_rebuilds_the_same() {
    eight_writers_exactly_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_handler_with_eight_writers_is_exactly_once_and_rebuilds_the_same() {
    eight_writers_exactly_once(true).await;
}

async fn eight_writers_exactly_once(batched: bool) {
    let store = pg_store().await;
    let mut ledger = PgLedger::create(&store).await;
    ledger.batched = batched;
    let (before, _) = post(&store, "early", 1_000, 7, 10).await;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(&store, ledger.clone(), fast()))
        .start();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move { post(&store, &format!("w{w}"), 250, 3, 1 + w % 4).await })
        })
        .collect();
    let mut expected = before;
    let mut last = Position::START;
    for writer in writers {
        let (totals, at) = writer.await.unwrap();
        expected = merge(&expected, &totals);
        last = last.max(at);
    }
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(ledger.totals(&store).await, expected);
    assert_eq!(ledger.applied(&store).await, 3_000);

    running.rebuild("ledger").await.unwrap();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(
        ledger.totals(&store).await,
        expected,
        "the rebuild differs from the incremental run"
    );
    let status = running.status("ledger").await.unwrap();
    assert_eq!(
        (status.state, status.lag_events, status.dead_letters),
        (ProjectionState::Running, 0, 0)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_parks_a_poison_event_in_the_batch_transaction_and_redrives_it() {
    parks_the_poison_event(false).await;
}

/// The batch handler fails its whole batch without naming the event: the worker finds it, keeps the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_handler_that_fails_a_whole_batch_parks_only_the_poison_event() {
    parks_the_poison_event(true).await;
}

async fn parks_the_poison_event(batched: bool) {
    let store = pg_store().await;
    let mut ledger = PgLedger::create(&store).await;
    ledger.batched = batched;
    let (first, _) = post(&store, "a", 40, 2, 4).await;
    let event =
        NewEvent::from_domain(&LedgerEvent::Posted { amount: POISON }, Default::default()).unwrap();
    let poisoned = store
        .append(
            &StreamId::new("bad-1").unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap();
    let (second, last) = post(&store, "b", 40, 2, 4).await;
    // Started after the writes, so the poison event comes in the middle of one catch-up batch.
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(
            &store,
            ledger.clone(),
            fast().on_failure(FailurePolicy::DeadLetter),
        ))
        .start();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(ledger.totals(&store).await, merge(&first, &second));
    let letters = running.dead_letters("ledger").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].position, poisoned.last_position);
    ledger.poisoned.store(false, Ordering::SeqCst);
    assert_eq!(running.redrive("ledger").await.unwrap(), (1, 0));
    assert_eq!(ledger.totals(&store).await.totals["bad-1"], POISON);
    assert_eq!(ledger.applied(&store).await, 81);
    running.shutdown().await;
}

/// Fails transiently a given number of times, then handles.
struct Flaky {
    failures_left: std::sync::atomic::AtomicU32,
    handled: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

#[async_trait::async_trait]
impl es_core::Projection for Flaky {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "flaky"
    }
    async fn handle(
        &self,
        _: LedgerEvent,
        _: &es_core::RecordedEvent,
    ) -> Result<(), es_core::projection::HandlerError> {
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(Box::new(es_core::projection::TransientError::new(
                "broker down",
            )));
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transient_failure_is_retried_past_max_attempts_and_never_dead_lettered() {
    let store = InMemoryEventStore::new();
    let handled = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let flaky = Flaky {
        failures_left: 10.into(),
        handled: handled.clone(),
    };
    let options = fast().max_attempts(2).on_failure(FailurePolicy::DeadLetter);
    let running = ProjectionRunner::new(store.clone())
        .with_projection(flaky, store.clone(), options)
        .start();
    let (_, last) = post(&store, "a", 3, 1, 3).await;
    running.wait_for("flaky", last, WAIT).await.unwrap();
    assert_eq!(handled.load(Ordering::SeqCst), 3);
    assert!(running.dead_letters("flaky").await.unwrap().is_empty());
    running.shutdown().await;
}
