//! One feed per runner: projections that have caught up take their pages from one shared reader, and a slow one
//! falls out of the bounded buffer and reads on its own instead of holding the others back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use es_core::backend::{FoldRead, Visit};
use es_core::projection::{HandlerError, ProjectionOptions};
use es_core::store::{AppendResult, EventStream, FeedFilter, FeedStream};
use es_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, Projection, ProjectionRunner,
    RecordedEvent, StoreError, StreamId, StreamRead,
};
use es_memory::InMemoryEventStore;
use futures::StreamExt;
use tests::ledger::LedgerEvent;

const WAIT: Duration = Duration::from_secs(60);

/// The in-memory store, counting the events its filtered feeds hand out.
#[derive(Clone)]
struct Counting {
    inner: InMemoryEventStore,
    delivered: Arc<AtomicU64>,
}

#[async_trait]
impl EventStore for Counting {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, read).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    fn subscribe_all(&self, after: Position) -> EventStream {
        self.inner.subscribe_all(after)
    }

    fn subscribe_filtered(&self, after: Position, filter: FeedFilter) -> FeedStream {
        let delivered = Arc::clone(&self.delivered);
        Box::pin(
            self.inner
                .subscribe_filtered(after, filter)
                .inspect(move |page| {
                    if let Ok(page) = page {
                        delivered.fetch_add(page.events.len() as u64, Ordering::Relaxed);
                    }
                }),
        )
    }

    async fn fold_stream(
        &self,
        stream: &StreamId,
        read: FoldRead,
        visit: &mut Visit<'_>,
    ) -> Result<usize, StoreError> {
        self.inner.fold_stream(stream, read, visit).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.inner.head().await
    }

    async fn contains_event(
        &self,
        stream: &StreamId,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        self.inner.contains_event(stream, event_id).await
    }
}

/// Counts each event it handles, by id; waits `pause` per event.
#[derive(Clone)]
struct Tally {
    name: &'static str,
    pause: Duration,
    seen: Arc<Mutex<HashMap<EventId, u32>>>,
}

impl Tally {
    fn new(name: &'static str, pause: Duration) -> Self {
        Self {
            name,
            pause,
            seen: Arc::default(),
        }
    }

    fn each_once(&self, events: usize) -> bool {
        let seen = self.seen.lock().unwrap();
        seen.len() == events && seen.values().all(|&n| n == 1)
    }
}

#[async_trait]
impl Projection for Tally {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        self.name
    }
    async fn handle(&self, _: LedgerEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        *self
            .seen
            .lock()
            .unwrap()
            .entry(record.event_id)
            .or_default() += 1;
        Ok(())
    }
}

async fn post(store: &impl EventStore, n: usize) -> Position {
    let mut last = Position::START;
    for i in 0..n {
        let event =
            NewEvent::from_domain(&LedgerEvent::Posted { amount: 1 }, Default::default()).unwrap();
        let stream = StreamId::new(format!("acct-{}", i % 10)).unwrap();
        last = store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap()
            .last_position;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caught_up_projections_read_the_live_log_once_between_them() {
    const EVENTS: usize = 2_000;
    let checkpoints = InMemoryEventStore::new();
    let store = Counting {
        inner: checkpoints.clone(),
        delivered: Arc::default(),
    };
    let tallies: Vec<Tally> = ["t1", "t2", "t3", "t4", "t5"]
        .into_iter()
        .map(|name| Tally::new(name, Duration::ZERO))
        .collect();
    let mut runner = ProjectionRunner::new(store.clone());
    for tally in &tallies {
        runner = runner.with_projection(
            tally.clone(),
            checkpoints.clone(),
            ProjectionOptions::default(),
        );
    }
    let running = runner.start();
    post(&store, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = store.delivered.load(Ordering::Relaxed);
    let last = post(&store, EVENTS).await;
    for tally in &tallies {
        running.wait_for(tally.name, last, WAIT).await.unwrap();
        assert!(tally.each_once(EVENTS + 10));
    }
    let live = store.delivered.load(Ordering::Relaxed) - before;
    println!("{live} events read from the store for {EVENTS} live events and 5 projections");
    assert!(
        live < (EVENTS * 3 / 2) as u64,
        "5 caught-up projections read {live} events for {EVENTS} (one feed would read {EVENTS})"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_projection_falls_out_of_the_shared_feed_instead_of_holding_the_others_back() {
    const EVENTS: usize = 1_000;
    let store = InMemoryEventStore::new();
    let fast = Tally::new("fast", Duration::ZERO);
    let slow = Tally::new("slow", Duration::from_millis(3));
    let running = ProjectionRunner::new(store.clone())
        .with_projection(fast.clone(), store.clone(), ProjectionOptions::default())
        .with_projection(
            slow.clone(),
            store.clone(),
            ProjectionOptions::default().batch_size(10),
        )
        .start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let last = post(&store, EVENTS).await;
    running.wait_for("fast", last, WAIT).await.unwrap();
    let fast_took = started.elapsed();
    let slow_status = running.status("slow").await.unwrap();
    assert!(
        slow_status.lag_events > (EVENTS / 2) as u64,
        "the slow projection kept up ({slow_status:?}): the test proves nothing"
    );
    running.wait_for("slow", last, WAIT).await.unwrap();
    println!(
        "fast caught up after {fast_took:?}, the slow one after {:?}",
        started.elapsed()
    );
    assert!(fast.each_once(EVENTS));
    assert!(
        slow.each_once(EVENTS),
        "the slow projection missed or repeated an event"
    );
    running.shutdown().await;
}
