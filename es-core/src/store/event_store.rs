//! The event store contract that every backend implements.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use crate::store::error::StoreError;
use crate::store::fold::{EventView, FoldRead, Visit};
use crate::store::held_back::HeldBack;
use crate::store::{
    AppendResult, EventId, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId, StreamRead,
};
use crate::store::{FeedFilter, FeedStream, MultiAppend, Query, QueryRead, filtered};

/// A live stream of events in global order, as returned by [`EventStore::subscribe_all`].
pub type EventStream = Pin<Box<dyn Stream<Item = Result<RecordedEvent, StoreError>> + Send>>;

/// An event store: streams of events with optimistic concurrency, and one global order over all of them.
///
/// Every backend passes the same conformance suite (`es_core::testing::conformance`, feature `testing`), which is
/// the precise statement of this contract.
///
/// ```
/// use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId, StreamRead, Version};
/// use es_memory::InMemoryEventStore;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("light-1")?;
/// let on = NewEvent::new("SwitchedOn", 1, serde_json::json!({ "lux": 300 }));
/// store.append(&stream, ExpectedVersion::NoStream, vec![on]).await?;
///
/// // A second writer that still believes the stream is new loses.
/// let late = NewEvent::new("SwitchedOn", 1, serde_json::json!({ "lux": 10 }));
/// assert!(store.append(&stream, ExpectedVersion::NoStream, vec![late]).await.is_err());
///
/// let events = store.read_stream(&stream, StreamRead::forward()).await?;
/// assert_eq!(events.len(), 1);
///
/// let mut live = store.subscribe_all(Position::START);
/// let first = live.next().await.transpose()?.map(|e| e.version);
/// assert_eq!(first, Some(Version::new(1)));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` as one atomic batch if the stream's version satisfies `expected`.
    ///
    /// A batch whose ids are all already stored in this stream, in the batch's order, at versions that `expected`
    /// could have written them at (the whole original batch or a leading part of it; any contiguous part with
    /// [`ExpectedVersion::Any`]) is a retry: it returns the original versions and positions with `replayed` set,
    /// and writes nothing.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `expected` does not hold, [`StoreError::DuplicateEventId`] when an id is reused
    /// in a way that is not a retry, [`StoreError::EmptyAppend`] for an empty batch, [`StoreError::InvalidEvent`],
    /// [`StoreError::Backend`]. After an error nothing is written.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Appends to several streams in one transaction, all or nothing (see [`MultiAppend`]); the results in the
    /// order of its appends. The memory, SQLite and PostgreSQL stores implement it; by default a store refuses it.
    ///
    /// # Errors
    /// [`StoreError::Conflicts`] naming every stream whose expectation failed; the errors of
    /// [`append`](Self::append) for each batch; [`StoreError::NothingToAppend`], [`StoreError::StreamRepeated`].
    async fn append_multi(&self, append: MultiAppend) -> Result<Vec<AppendResult>, StoreError> {
        let _ = append;
        Err(StoreError::Backend {
            operation: "append_multi",
            source: "this store does not implement multi-stream appends".into(),
        })
    }

    /// The events matching `query` after `after` (every stream), in global order, and the position a decision
    /// made on them conditions its append on ([`AppendCondition`](crate::store::AppendCondition)). The memory,
    /// SQLite and PostgreSQL stores implement it; by default a store refuses it.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn read_query(
        &self,
        query: &Query,
        after: Option<Position>,
    ) -> Result<QueryRead, StoreError> {
        let _ = (query, after);
        Err(StoreError::Backend {
            operation: "read_query",
            source: "this store does not implement query reads".into(),
        })
    }

    /// Reads events of one stream. A missing stream reads as empty.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Calls `visit` with each event of `read`, oldest first, without copying them out of the store: how a load
    /// folds a stream. Returns how many events it read (a `Break` from `visit` stops early). The default reads the
    /// events with [`read_stream`](Self::read_stream); backends read rows straight into views (PostgreSQL: one
    /// query of four columns, payloads as text).
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn fold_stream(
        &self,
        stream: &StreamId,
        read: FoldRead,
        visit: &mut Visit<'_>,
    ) -> Result<usize, StoreError> {
        let events = self.read_stream(stream, read.as_stream_read()).await?;
        Ok(EventView::visit_each(&events, visit))
    }

    /// Reads up to `limit` events of all streams after `after`, in global order.
    ///
    /// The global order never changes behind a reader: once an event at position `P` has been returned, no event
    /// before `P` appears later. To keep that promise a backend may hold back a committed event until every
    /// transaction that could still commit before it has ended (PostgreSQL does), so `read_all` right after an
    /// append can lag behind it briefly; the in-memory store never lags.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Every event after `after` in global order: first those stored now (catch-up), then new ones as they are
    /// committed (live). The stream ends only with an error item or when dropped.
    fn subscribe_all(&self, after: Position) -> EventStream;

    /// The events after `after` that `filter` selects, in pages that say how far they read
    /// ([`FeedBatch`](crate::store::FeedBatch)): catch-up, then live, like [`subscribe_all`](Self::subscribe_all). The default
    /// filters [`subscribe_all`](Self::subscribe_all) in the process; a backend with a query language filters on
    /// the server, so a projection of a few categories does not fetch and decode the whole log.
    ///
    /// ```
    /// use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
    /// use es_core::store::FeedFilter;
    /// use es_memory::InMemoryEventStore;
    /// use futures::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = InMemoryEventStore::new();
    /// let on = || NewEvent::new("SwitchedOn", 1, serde_json::json!({}));
    /// store.append(&StreamId::new("door-1")?, ExpectedVersion::Any, vec![on()]).await?;
    /// let last = store.append(&StreamId::new("light-1")?, ExpectedVersion::Any, vec![on()]).await?;
    ///
    /// let lights = FeedFilter::all().with_categories(&["light"]);
    /// let batch = store.subscribe_filtered(Position::START, lights).next().await.transpose()?.unwrap();
    /// assert_eq!(batch.events.len(), 1);
    /// assert_eq!(batch.through, last.last_position);
    /// # Ok(()) }
    /// ```
    fn subscribe_filtered(&self, after: Position, filter: FeedFilter) -> FeedStream {
        filtered(self.subscribe_all(after), filter)
    }

    /// The position of the newest event `read_all` shows; `None` for an empty store. The default pages through
    /// `read_all`; backends answer directly.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let mut head = None;
        loop {
            let page = self
                .read_all(head.unwrap_or(Position::START), 1_000)
                .await?;
            match page.last() {
                Some(last) => head = Some(last.position),
                None => return Ok(head),
            }
        }
    }

    /// Whether the event with id `event_id` is stored in `stream` (how a command sent again by id is recognised).
    /// The default reads the stream; backends answer from their event-id index.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn contains_event(
        &self,
        stream: &StreamId,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        let events = self.read_stream(stream, StreamRead::forward()).await?;
        Ok(events.iter().any(|e| e.event_id == event_id))
    }

    /// Committed events that `read_all` does not show yet because an older transaction is still open (the global
    /// order waits for it, so it never skips), and that transaction; `None` when nothing waits, and always for
    /// stores whose order never waits (the default).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn held_back(&self) -> Result<Option<HeldBack>, StoreError> {
        Ok(None)
    }

    /// How many events `read_all` shows after `after` (a projection's lag). The default pages through `read_all`;
    /// backends answer directly, and may bound the work: PostgreSQL counts exactly up to
    /// `PgEventStoreBuilder::count_cap` events and estimates from positions past it (operators and the metrics
    /// sampler call this every few seconds, however far behind a projection is).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn count_after(&self, after: Position) -> Result<u64, StoreError> {
        let (mut count, mut cursor) = (0, after);
        loop {
            let page = self.read_all(cursor, 1_000).await?;
            let Some(last) = page.last() else {
                return Ok(count);
            };
            cursor = last.position;
            count += page.len() as u64;
        }
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for std::sync::Arc<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        (**self).append(stream, expected, events).await
    }

    async fn append_multi(&self, append: MultiAppend) -> Result<Vec<AppendResult>, StoreError> {
        (**self).append_multi(append).await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Option<Position>,
    ) -> Result<QueryRead, StoreError> {
        (**self).read_query(query, after).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_stream(stream, read).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_all(after, limit).await
    }

    fn subscribe_all(&self, after: Position) -> EventStream {
        (**self).subscribe_all(after)
    }

    fn subscribe_filtered(&self, after: Position, filter: FeedFilter) -> FeedStream {
        (**self).subscribe_filtered(after, filter)
    }

    async fn fold_stream(
        &self,
        stream: &StreamId,
        read: FoldRead,
        visit: &mut Visit<'_>,
    ) -> Result<usize, StoreError> {
        (**self).fold_stream(stream, read, visit).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        (**self).head().await
    }

    async fn count_after(&self, after: Position) -> Result<u64, StoreError> {
        (**self).count_after(after).await
    }

    async fn held_back(&self) -> Result<Option<HeldBack>, StoreError> {
        (**self).held_back().await
    }

    async fn contains_event(
        &self,
        stream: &StreamId,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        (**self).contains_event(stream, event_id).await
    }
}
