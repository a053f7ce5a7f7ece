//! Keyed projections: with `ProjectionOptions::concurrency` above 1 the at-least-once worker handles differently
//! keyed events at once, each key's events in order, and a failure still leaves the checkpoint just before the
//! first event that was not handled.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{HandlerError, ProjectionOptions, ProjectionState};
use es_core::{
    EventStore, ExpectedVersion, NewEvent, Position, Projection, ProjectionRunner, RecordedEvent,
    StreamId,
};
use es_memory::InMemoryEventStore;
use tests::ledger::LedgerEvent;

/// Records the versions it handled per stream, and how many events it had in hand at once.
#[derive(Clone, Default)]
struct PerStream {
    seen: Arc<Mutex<HashMap<String, Vec<u64>>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// `stream@version` that always fails.
    poison: Option<(String, u64)>,
}

#[async_trait]
impl Projection for PerStream {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "per-stream"
    }

    fn key(&self, _: &LedgerEvent, record: &RecordedEvent) -> Option<String> {
        Some(record.stream_id.to_string())
    }

    async fn handle(&self, _: LedgerEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let (stream, version) = (record.stream_id.to_string(), record.version.get());
        if self.poison.as_ref() == Some(&(stream.clone(), version)) {
            return Err("poisoned".into());
        }
        self.seen
            .lock()
            .unwrap()
            .entry(stream)
            .or_default()
            .push(version);
        Ok(())
    }
}

/// 20 streams of 10 events each, appended round-robin; every event stored, in global order.
async fn interleaved(store: &InMemoryEventStore) -> Vec<RecordedEvent> {
    for _ in 0..10 {
        for stream in 0..20 {
            let event =
                NewEvent::from_domain(&LedgerEvent::Posted { amount: 1 }, Default::default())
                    .unwrap();
            store
                .append(
                    &StreamId::new(format!("acct-{stream}")).unwrap(),
                    ExpectedVersion::Any,
                    vec![event.with_event_id(es_core::EventId::new())],
                )
                .await
                .unwrap();
        }
    }
    store.read_all(Position::START, usize::MAX).await.unwrap()
}

fn options() -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(50)
        .max_attempts(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .concurrency(8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differently_keyed_events_are_handled_at_once_and_each_key_in_order() {
    let store = InMemoryEventStore::new();
    let all = interleaved(&store).await;
    let projection = PerStream::default();
    let running = ProjectionRunner::new(store.clone())
        .with_projection(projection.clone(), store.clone(), options())
        .start();
    let last = all.last().unwrap().position;
    running
        .wait_for("per-stream", last, Duration::from_secs(30))
        .await
        .unwrap();
    running.shutdown().await;
    let seen = projection.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 20);
    for (stream, versions) in &seen {
        assert_eq!(versions, &(1..=10).collect::<Vec<u64>>(), "{stream}");
    }
    let most = projection.most_in_flight.load(Ordering::SeqCst);
    assert!(most > 1 && most <= 8, "{most} events in hand at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_leaves_the_checkpoint_before_it_and_everything_before_it_handled() {
    let store = InMemoryEventStore::new();
    let all = interleaved(&store).await;
    let projection = PerStream {
        poison: Some(("acct-7".to_owned(), 4)),
        ..PerStream::default()
    };
    let running = ProjectionRunner::new(store.clone())
        .with_projection(projection.clone(), store.clone(), options())
        .start();
    let failed_at = all
        .iter()
        .position(|e| e.stream_id.as_str() == "acct-7" && e.version.get() == 4)
        .unwrap();
    let mut status = running.status("per-stream").await.unwrap();
    for _ in 0..300 {
        if matches!(status.state, ProjectionState::Failed { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = running.status("per-stream").await.unwrap();
    }
    assert!(
        matches!(status.state, ProjectionState::Failed { .. }),
        "{status:?}"
    );
    assert_eq!(status.checkpoint, Some(all[failed_at - 1].position));
    let seen = projection.seen.lock().unwrap().clone();
    for event in &all[..failed_at] {
        let versions = &seen[event.stream_id.as_str()];
        assert!(
            versions.contains(&event.version.get()),
            "{}@{} was skipped",
            event.stream_id,
            event.version
        );
    }
    assert_eq!(
        seen["acct-7"],
        vec![1, 2, 3],
        "acct-7 went on past its failing event"
    );
    running.shutdown().await;
}
