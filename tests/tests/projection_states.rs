//! What a projection reports before its first attempt to become the active instance: `starting`, never `standby`
//! (a lone instance used to look like a standby until its first attempt answered).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use es_core::backend::{Acquired, ApplyError, CheckpointedWorker, ProjectionWorker, WorkerError};
use es_core::projection::{DeadLetter, ProjectionOptions, ProjectionState};
use es_core::store::FeedFilter;
use es_core::{Position, ProjectionRunner, RecordedEvent};
use es_memory::InMemoryEventStore;
use tests::ledger::MemoryLedger;
use tokio::sync::Semaphore;

/// A worker whose first attempt to become active waits for the test's permit.
struct HeldAtAcquire {
    inner: CheckpointedWorker<MemoryLedger, InMemoryEventStore>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl ProjectionWorker for HeldAtAcquire {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn options(&self) -> &ProjectionOptions {
        self.inner.options()
    }
    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
        let permit = self.gate.acquire().await;
        permit.map(|p| p.forget()).ok();
        self.inner.acquire().await
    }
    fn feed_filter(&self) -> FeedFilter {
        self.inner.feed_filter()
    }
    fn wants(&self, stream: &str, event_type: &str) -> bool {
        self.inner.wants(stream, event_type)
    }
    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        self.inner.checkpoint().await
    }
    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError> {
        self.inner.apply(events, from, to).await
    }
    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        self.inner.park(letter, from).await
    }
    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        self.inner.reset(from, to).await
    }
    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        self.inner.dead_letters().await
    }
    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError> {
        self.inner.discard(letter).await
    }
    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        self.inner.redrive(letter, event).await
    }
    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        self.inner.replace_dead_letter(letter).await
    }
}

#[tokio::test]
async fn a_projection_is_starting_until_its_first_attempt_to_become_active_answers() {
    let store = InMemoryEventStore::new();
    let gate = Arc::new(Semaphore::new(0));
    let worker = HeldAtAcquire {
        inner: CheckpointedWorker::new(
            MemoryLedger::named("ledger"),
            store.clone(),
            ProjectionOptions::default(),
        ),
        gate: Arc::clone(&gate),
    };
    let running = ProjectionRunner::new(store.clone()).with(worker).start();
    let state = running.state("ledger").unwrap();
    assert_eq!(state, ProjectionState::Starting);
    assert_eq!(state.label(), "starting");
    gate.add_permits(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while running.state("ledger").unwrap() != ProjectionState::Running {
        assert!(tokio::time::Instant::now() < deadline, "never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.shutdown().await;
}
