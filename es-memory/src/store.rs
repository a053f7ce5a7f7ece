//! The in-memory event store.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use es_core::aggregate::Snapshot;
use es_core::backend::{EventView, FoldRead, Visit, validate_multi};
use es_core::projection::DeadLetter;
use es_core::store::{AppendResult, EventLimits, EventStream, MultiAppend, Query, QueryRead};
use es_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError, StreamId,
    StreamRead,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::log::Log;
use crate::subscription;

/// An event store in memory, safe to share between tasks: events, snapshots and checkpoints. Clones share the same
/// data.
///
/// Appends take a write lock for the duration of the batch; reads take a read lock and copy only the events they
/// return. Subscribers are woken by a watch channel on each append, never by polling. Positions are
/// `(n, n)` for the `n`th event stored.
///
/// ```
/// use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let shared = store.clone();
/// let stream = StreamId::new("task-1")?;
/// shared.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("Created", 1, serde_json::json!({}))]).await?;
/// assert_eq!(store.read_all(Position::START, 100).await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct InMemoryEventStore {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) log: RwLock<Log>,
    /// The sequence number of the newest event; subscribers wait on it.
    pub(crate) head: watch::Sender<u64>,
    /// The newest snapshot per (stream, snapshot type).
    pub(crate) snapshots: RwLock<HashMap<(StreamId, String), Snapshot>>,
    /// One position per reader name.
    pub(crate) checkpoints: Mutex<HashMap<String, Position>>,
    /// Document projections' documents: projection → id → document. Written under the checkpoints' lock.
    pub(crate) documents:
        Mutex<HashMap<String, std::collections::BTreeMap<String, serde_json::Value>>>,
    /// Document projections' live versions: projection → (version, key). Written under the checkpoints' lock.
    pub(crate) document_versions: Mutex<HashMap<String, (u32, String)>>,
    /// Parked events of every projection.
    pub(crate) dead_letters: Mutex<Vec<DeadLetter>>,
    /// Process managers' instances and timers.
    pub(crate) processes: Mutex<Processes>,
    /// Control requests, reports and pauses.
    pub(crate) control: Mutex<crate::control::Control>,
    /// Event ids consumers have processed, one consumer transaction at a time.
    pub(crate) inbox: Arc<tokio::sync::Mutex<crate::inbox::Processed>>,
    /// What an event may be.
    pub(crate) limits: EventLimits,
}

/// Process instances by (process, instance), and timers by (process, instance, name).
#[derive(Debug, Default)]
pub(crate) struct Processes {
    pub(crate) records: HashMap<(String, String), es_core::process::ProcessRecord>,
    pub(crate) timers: HashMap<(String, String, String), chrono::DateTime<chrono::Utc>>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::with_limits(EventLimits::default())
    }

    /// An empty store accepting events within `limits` (the same bounds as every other store by default).
    ///
    /// ```
    /// use es_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
    /// use es_core::store::EventLimits;
    /// use es_memory::InMemoryEventStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = InMemoryEventStore::with_limits(EventLimits::default().max_event_bytes(64 * 1024));
    /// let big = NewEvent::new("Noted", 1, serde_json::json!({ "text": "x".repeat(100_000) }));
    /// let refused = store.append(&StreamId::new("note-1")?, ExpectedVersion::Any, vec![big]).await;
    /// assert!(matches!(refused, Err(StoreError::InvalidEvent { .. })));
    /// # Ok(()) }
    /// ```
    pub fn with_limits(limits: EventLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                log: RwLock::new(Log::default()),
                head: watch::Sender::new(0),
                snapshots: RwLock::default(),
                checkpoints: Mutex::default(),
                documents: Mutex::default(),
                document_versions: Mutex::default(),
                dead_letters: Mutex::default(),
                processes: Mutex::default(),
                control: Mutex::default(),
                inbox: Arc::default(),
                limits,
            }),
        }
    }
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let started = std::time::Instant::now();
        let count = events.len();
        let appended = {
            let mut log = self.shared.log.write();
            log.append(stream, expected, events, &self.shared.limits)
                .map(|result| (result, log.head()))
        };
        if let Ok((result, head)) = &appended
            && !result.replayed
        {
            self.shared.head.send_replace(*head);
        }
        let result = appended.map(|(result, _)| result);
        es_core::telemetry::record_append(stream.category(), count, &result, started.elapsed());
        result
    }

    async fn append_multi(&self, append: MultiAppend) -> Result<Vec<AppendResult>, StoreError> {
        es_core::telemetry::measure_append_multi(append, |append| async move {
            validate_multi(&append)?;
            let appended = {
                let mut log = self.shared.log.write();
                log.append_multi(append.into_parts(), &self.shared.limits)
                    .map(|results| (results, log.head()))
            };
            let (results, head) = appended?;
            if results.iter().any(|r| !r.replayed) {
                self.shared.head.send_replace(head);
            }
            Ok(results)
        })
        .await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Option<Position>,
    ) -> Result<QueryRead, StoreError> {
        Ok(self.shared.log.read().read_query(query, after))
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.shared.log.read().read_stream(stream, read))
    }

    async fn fold_stream(
        &self,
        stream: &StreamId,
        read: FoldRead,
        visit: &mut Visit<'_>,
    ) -> Result<usize, StoreError> {
        let log = self.shared.log.read();
        let events = log.select(stream, read.as_stream_read());
        for event in &events {
            if visit(EventView::of(event)).is_break() {
                break;
            }
        }
        Ok(events.len())
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.shared.log.read().read_all(after, limit))
    }

    fn subscribe_all(&self, after: Position) -> EventStream {
        subscription::subscribe(Arc::clone(&self.shared), after)
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let head = self.shared.log.read().head();
        Ok((head > 0).then(|| Position::new(head, head)))
    }

    async fn count_after(&self, after: Position) -> Result<u64, StoreError> {
        Ok(self.shared.log.read().count_after(after))
    }

    async fn contains_event(
        &self,
        stream: &StreamId,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        Ok(self.shared.log.read().contains(stream, event_id))
    }
}
