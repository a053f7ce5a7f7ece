//! The event store contract that every backend implements.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;

use crate::error::{DuplicateReason, StoreError};
use crate::{
    EventId, EventLimits, ExpectedVersion, HeldBack, NewEvent, Position, RecordedEvent, StreamId,
    Version,
};

/// The direction of a stream read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// Which events of a stream to read: a direction, a starting version and a limit.
///
/// Forward reads start at version 1 unless told otherwise and return versions `>= from`; backward reads start at
/// the end and return versions `<= from`, newest first.
///
/// ```
/// use es_core::{Direction, StreamRead, Version};
///
/// let read = StreamRead::forward().from(Version::new(10)).limit(100);
/// assert_eq!(read.direction, Direction::Forward);
/// assert_eq!(read.from, Some(Version::new(10)));
/// assert_eq!(read.limit, 100);
///
/// let last = StreamRead::backward().limit(1); // the newest event
/// assert_eq!(last.from, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamRead {
    /// Forward or backward.
    pub direction: Direction,
    /// The first version to return; `None` is the start (forward) or the end (backward).
    pub from: Option<Version>,
    /// The most events to return.
    pub limit: usize,
}

impl StreamRead {
    /// Every event, oldest first.
    pub const fn forward() -> Self {
        Self {
            direction: Direction::Forward,
            from: None,
            limit: usize::MAX,
        }
    }

    /// Every event, newest first.
    pub const fn backward() -> Self {
        Self {
            direction: Direction::Backward,
            from: None,
            limit: usize::MAX,
        }
    }

    /// Starts at `version` (inclusive).
    pub const fn from(mut self, version: Version) -> Self {
        self.from = Some(version);
        self
    }

    /// Returns at most `limit` events.
    pub const fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// What an append wrote, or, for a recognised retry, what the original append wrote.
///
/// ```
/// # use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId, Version};
/// # use es_memory::InMemoryEventStore;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("cart-1")?;
/// let batch = vec![NewEvent::new("Added", 1, serde_json::json!({})), NewEvent::new("Added", 1, serde_json::json!({}))];
/// let first = store.append(&stream, ExpectedVersion::NoStream, batch.clone()).await?;
/// assert_eq!((first.first_version, first.last_version), (Version::new(1), Version::new(2)));
/// assert!(!first.replayed);
///
/// // The same batch again (a retry after a lost reply): the original result, nothing written.
/// let retry = store.append(&stream, ExpectedVersion::NoStream, batch).await?;
/// assert!(retry.replayed);
/// assert_eq!(retry.last_position, first.last_position);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendResult {
    /// The version of the first event of the batch.
    pub first_version: Version,
    /// The version of the last event: the stream's version right after this append.
    pub last_version: Version,
    /// The global position of the first event of the batch.
    pub first_position: Position,
    /// The global position of the last event: wait for a projection to pass it to read your own write.
    pub last_position: Position,
    /// `true` when the events were already stored by an earlier append with the same ids, and nothing was written.
    pub replayed: bool,
}

/// Checks what every backend refuses before touching storage: an empty batch, an id repeated in the batch, a
/// schema version outside `1..=i32::MAX`, an empty event type name, and the [default limits](EventLimits). For
/// backend implementors; a store with its own limits calls [`EventLimits::check`].
///
/// ```
/// use es_core::{NewEvent, StoreError, StreamId, validate_append};
///
/// let stream = StreamId::new("s-1")?;
/// assert!(matches!(validate_append(&stream, &[]), Err(StoreError::EmptyAppend { .. })));
/// let event = NewEvent::new("Happened", 1, serde_json::json!({}));
/// assert!(validate_append(&stream, &[event.clone()]).is_ok());
/// assert!(matches!(validate_append(&stream, &[event.clone(), event]), Err(StoreError::DuplicateEventId { .. })));
/// # Ok::<(), es_core::StreamIdError>(())
/// ```
///
/// # Errors
/// [`StoreError::EmptyAppend`], [`StoreError::DuplicateEventId`] with [`DuplicateReason::RepeatedInBatch`],
/// [`StoreError::InvalidEvent`].
pub fn validate_append(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    EventLimits::default().check(stream, events)
}

/// The checks of [`validate_append`] that do not depend on limits.
pub(crate) fn validate_batch(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::EmptyAppend {
            stream: stream.clone(),
        });
    }
    let invalid = |event: &NewEvent, reason: String| StoreError::InvalidEvent {
        stream: stream.clone(),
        event_id: event.event_id,
        event_type: event.event_type.to_string(),
        reason,
    };
    let mut seen = HashSet::with_capacity(events.len());
    for event in events {
        if !seen.insert(event.event_id) {
            return Err(StoreError::DuplicateEventId {
                stream: stream.clone(),
                event_id: event.event_id,
                reason: DuplicateReason::RepeatedInBatch,
            });
        }
        if event.schema_version == 0 || i32::try_from(event.schema_version).is_err() {
            let reason = format!(
                "schema version {} is outside 1..={}",
                event.schema_version,
                i32::MAX
            );
            return Err(invalid(event, reason));
        }
        if event.event_type.is_empty() {
            return Err(invalid(event, "the event type name is empty".to_owned()));
        }
    }
    Ok(())
}

/// Which events of a stream a load folds: versions from `from` on, at most `limit`, oldest first; with the time
/// each was recorded only when `recorded_at` is set (loads as of a time).
///
/// ```
/// use es_core::{FoldRead, Version};
///
/// let read = FoldRead::from(Version::new(11)).limit(100);
/// assert_eq!((read.from, read.limit, read.recorded_at), (Version::new(11), 100, false));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FoldRead {
    /// The first version to fold.
    pub from: Version,
    /// The most events to read.
    pub limit: usize,
    /// Whether each view carries its `recorded_at`.
    pub recorded_at: bool,
}

impl FoldRead {
    /// Every event from version `from` on, without times.
    pub const fn from(from: Version) -> Self {
        Self {
            from,
            limit: usize::MAX,
            recorded_at: false,
        }
    }

    /// At most `limit` events.
    pub const fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// With the time each event was recorded.
    pub const fn with_recorded_at(mut self) -> Self {
        self.recorded_at = true;
        self
    }

    /// The same read as a [`StreamRead`].
    pub const fn as_stream_read(&self) -> StreamRead {
        StreamRead::forward().from(self.from).limit(self.limit)
    }
}

/// A stored event as a load folds it: only what decoding and folding need, borrowed from the store's buffers,
/// with the payload not yet parsed where the store holds it as text, no metadata and no position (a load that
/// fails to decode an event looks its position up afterwards). See [`EventStore::fold_stream`].
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    /// Its version in the stream.
    pub version: Version,
    /// Its type name as stored.
    pub event_type: &'a str,
    /// The schema version its payload was written with.
    pub schema_version: u32,
    /// The payload.
    pub payload: PayloadView<'a>,
    /// When the store recorded it, if the read asked ([`FoldRead::recorded_at`]).
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A stored payload, as the store has it at hand.
#[derive(Clone, Copy, Debug)]
pub enum PayloadView<'a> {
    /// Parsed already (the in-memory store).
    Value(&'a serde_json::Value),
    /// JSON text, not parsed yet (a database row): decoded straight into the event type.
    Text(&'a str),
}

impl EventView<'_> {
    /// Calls `visit` with a view of each of `events` until it says stop; returns how many events there were
    /// (what [`EventStore::fold_stream`] returns). For backend implementors.
    pub fn visit_each(events: &[RecordedEvent], visit: &mut Visit<'_>) -> usize {
        for event in events {
            if visit(EventView::of(event)).is_break() {
                break;
            }
        }
        events.len()
    }
}

impl<'a> EventView<'a> {
    /// A view of a recorded event (with its time).
    pub fn of(event: &'a RecordedEvent) -> Self {
        Self {
            version: event.version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: PayloadView::Value(&event.payload),
            recorded_at: Some(event.recorded_at),
        }
    }
}

/// What [`EventStore::fold_stream`] calls for each event; [`ControlFlow::Break`] stops the read.
pub type Visit<'v> = dyn for<'e> FnMut(EventView<'e>) -> ControlFlow<()> + Send + 'v;

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
    /// backends answer directly.
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
