//! `FailurePolicy::ParkStream`: a poison event parks its stream from there on, in order, while the other streams
//! go on; redrive replays the parked events in order; which streams are parked survives a restart. In memory (with
//! the order each stream's events were handled in) and on PostgreSQL (the transactional worker).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{FailurePolicy, HandlerError, ProjectionOptions, RunningProjections};
use es_core::{
    EventStore, ExpectedVersion, NewEvent, Position, Projection, ProjectionRunner, RecordedEvent,
    StreamId, Version,
};
use es_memory::InMemoryEventStore;
use es_postgres::PgProjectionWorker;
use tests::ledger::{LedgerEvent, POISON, PgLedger};
use tests::pg_store;

const WAIT: Duration = Duration::from_secs(30);

fn options() -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(100)
        .max_attempts(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .on_failure(FailurePolicy::ParkStream)
}

/// Records the versions it handled per stream, in the order it handled them; fails on [`POISON`] while poisoned.
#[derive(Clone, Default)]
struct Versions {
    handled: Arc<Mutex<HashMap<String, Vec<Version>>>>,
    poisoned: Arc<AtomicBool>,
}

impl Versions {
    fn of(&self, stream: &str) -> Vec<Version> {
        self.handled
            .lock()
            .unwrap()
            .get(stream)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl Projection for Versions {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "versions"
    }
    async fn handle(&self, event: LedgerEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        let LedgerEvent::Posted { amount } = event;
        if amount == POISON && self.poisoned.load(Ordering::SeqCst) {
            return Err(format!("poisoned posting in {}", record.stream_id).into());
        }
        self.handled
            .lock()
            .unwrap()
            .entry(record.stream_id.to_string())
            .or_default()
            .push(record.version);
        Ok(())
    }
}

async fn post(store: &impl EventStore, stream: &str, amounts: &[i64]) -> Position {
    let events = amounts
        .iter()
        .map(|&amount| {
            NewEvent::from_domain(&LedgerEvent::Posted { amount }, Default::default()).unwrap()
        })
        .collect();
    store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            events,
        )
        .await
        .unwrap()
        .last_position
}

/// Interleaves writes to `good-1`, `good-2` and `bad-1`, whose third event is poison; returns the last position.
async fn interleaved(store: &impl EventStore) -> Position {
    let mut last = Position::START;
    for round in 0..5 {
        post(store, "good-1", &[1, 2]).await;
        let bad = if round == 1 { vec![3, POISON] } else { vec![3] };
        post(store, "bad-1", &bad).await;
        last = post(store, "good-2", &[4]).await;
    }
    last
}

fn versions(range: std::ops::RangeInclusive<u64>) -> Vec<Version> {
    range.map(Version::new).collect()
}

async fn letters_of(running: &RunningProjections, name: &str) -> Vec<(String, Version)> {
    running
        .dead_letters(name)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.stream_id, l.version))
        .collect()
}

/// The interleaved streams in memory, with the poison in place, projected by a runner that has caught up.
async fn started_poisoned() -> (
    InMemoryEventStore,
    Versions,
    es_core::projection::RunningProjections,
) {
    let store = InMemoryEventStore::new();
    let versions_seen = Versions::default();
    versions_seen.poisoned.store(true, Ordering::SeqCst);
    let last = interleaved(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with_projection(versions_seen.clone(), store.clone(), options())
        .start();
    running.wait_for("versions", last, WAIT).await.unwrap();
    (store, versions_seen, running)
}

#[tokio::test]
async fn a_poison_event_parks_its_stream_in_order_while_others_go_on_and_redrive_replays_it() {
    let (store, versions_seen, running) = started_poisoned().await;

    assert_eq!(versions_seen.of("good-1"), versions(1..=10));
    assert_eq!(versions_seen.of("good-2"), versions(1..=5));
    // bad-1: versions 1 and 2 handled, 3 is the poison, 4..=6 are parked behind it.
    assert_eq!(versions_seen.of("bad-1"), versions(1..=2));
    let parked: Vec<_> = (3..=6)
        .map(|v| ("bad-1".to_owned(), Version::new(v)))
        .collect();
    assert_eq!(letters_of(&running, "versions").await, parked);
    let letters = running.dead_letters("versions").await.unwrap();
    assert!(letters[0].error.contains("poisoned"), "{letters:?}");
    assert!(letters[1].error.contains("parked behind"), "{letters:?}");

    // Still parked: a later event of the stream queues behind; other streams go on.
    let at = post(&store, "bad-1", &[7]).await;
    running.wait_for("versions", at, WAIT).await.unwrap();
    assert_eq!(versions_seen.of("bad-1"), versions(1..=2));
    assert_eq!(running.dead_letters("versions").await.unwrap().len(), 5);

    // Redrive while the poison still fails: nothing moves, the order is kept.
    assert_eq!(running.redrive("versions").await.unwrap(), (0, 5));
    assert_eq!(versions_seen.of("bad-1"), versions(1..=2));

    versions_seen.poisoned.store(false, Ordering::SeqCst);
    assert_eq!(running.redrive("versions").await.unwrap(), (5, 0));
    assert_eq!(versions_seen.of("bad-1"), versions(1..=7));
    // Unparked: the next event is handled as it comes.
    let at = post(&store, "bad-1", &[8]).await;
    running.wait_for("versions", at, WAIT).await.unwrap();
    assert_eq!(versions_seen.of("bad-1"), versions(1..=8));
    running.shutdown().await;
}

#[tokio::test]
async fn a_parked_stream_stays_parked_across_a_restart() {
    let (store, versions_seen, running) = started_poisoned().await;
    running.shutdown().await;

    let at = post(&store, "bad-1", &[7]).await;
    let again = post(&store, "good-1", &[9]).await;
    let running = ProjectionRunner::new(store.clone())
        .with_projection(versions_seen.clone(), store.clone(), options())
        .start();
    running
        .wait_for("versions", at.max(again), WAIT)
        .await
        .unwrap();
    assert_eq!(versions_seen.of("bad-1"), versions(1..=2));
    assert_eq!(versions_seen.of("good-1"), versions(1..=11));
    assert_eq!(running.dead_letters("versions").await.unwrap().len(), 5);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_parks_the_stream_in_the_batch_transaction_and_redrives_it_in_order() {
    let store = pg_store().await;
    let mut ledger = PgLedger::create(&store).await;
    ledger.batched = true;
    let last = interleaved(&store).await;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(&store, ledger.clone(), options()))
        .start();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    let totals = ledger.totals(&store).await;
    assert_eq!(totals.counts["good-1"], 10);
    assert_eq!(totals.counts["good-2"], 5);
    assert_eq!(totals.counts["bad-1"], 2);
    let parked: Vec<_> = (3..=6)
        .map(|v| ("bad-1".to_owned(), Version::new(v)))
        .collect();
    assert_eq!(letters_of(&running, "ledger").await, parked);

    ledger.poisoned.store(false, Ordering::SeqCst);
    assert_eq!(running.redrive("ledger").await.unwrap(), (4, 0));
    let totals = ledger.totals(&store).await;
    assert_eq!(totals.counts["bad-1"], 6);
    assert_eq!(totals.totals["bad-1"], 3 * 5 + POISON);
    assert_eq!(ledger.applied(&store).await, 21);
    running.shutdown().await;
}
