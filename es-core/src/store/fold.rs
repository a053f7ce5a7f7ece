//! The load fast path: a stream folded event by event from borrowed rows, without building `RecordedEvent`s.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use crate::event::{DecodeError, DomainEvent};
use crate::store::{RecordedEvent, StreamRead, Version};

/// Which events of a stream a load folds: versions from `from` on, at most `limit`, oldest first; with the time
/// each was recorded only when `recorded_at` is set (loads as of a time).
///
/// ```
/// use es_core::Version;
/// use es_core::backend::FoldRead;
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
/// fails to decode an event looks its position up afterwards). See [`EventStore::fold_stream`](crate::EventStore::fold_stream).
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
    /// (what [`EventStore::fold_stream`](crate::EventStore::fold_stream) returns). For backend implementors.
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

/// What [`EventStore::fold_stream`](crate::EventStore::fold_stream) calls for each event; [`ControlFlow::Break`] stops the read.
pub type Visit<'v> = dyn for<'e> FnMut(EventView<'e>) -> ControlFlow<()> + Send + 'v;

/// Upcasts and decodes a stored event as a load sees it.
///
/// # Errors
/// As [`decode_payload`](crate::evolution::decode_payload) and [`decode_text`](crate::evolution::decode_text).
pub fn decode_view<E: DomainEvent>(event: &EventView<'_>) -> Result<E, DecodeError> {
    match event.payload {
        PayloadView::Value(value) => {
            crate::event::decode_payload(event.event_type, event.schema_version, value)
        }
        PayloadView::Text(text) => {
            crate::event::decode_text(event.event_type, event.schema_version, text)
        }
    }
}
