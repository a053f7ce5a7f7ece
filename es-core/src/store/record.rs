//! Events on their way into a store, and as a store returns them.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{DomainEvent, EncodeError};
use crate::store::error::EventDecodeError;
use crate::store::{EventId, Metadata, Position, StreamId, Version};

/// An event to append: id, type, schema version, JSON payload and metadata.
///
/// Build it from a typed event with [`NewEvent::from_domain`], or from raw parts with [`NewEvent::new`] (imports,
/// tests, other languages' events).
///
/// ```
/// use es_core::{DomainEvent, Metadata, NewEvent};
///
/// #[derive(DomainEvent)]
/// enum Light { SwitchedOn { lux: u32 } }
///
/// let event = NewEvent::from_domain(&Light::SwitchedOn { lux: 300 }, Metadata::new())?;
/// assert_eq!(event.event_type, "SwitchedOn");
/// assert_eq!(event.payload["lux"], 300);
///
/// let raw = NewEvent::new("SwitchedOn", 1, serde_json::json!({ "lux": 10 }));
/// assert_eq!(raw.schema_version, 1);
/// # Ok::<(), es_core::store::EncodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The client-chosen id; appending the same ids again is recognised as a retry.
    pub event_id: EventId,
    /// The stable type name.
    pub event_type: Cow<'static, str>,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// The metadata.
    pub metadata: Metadata,
    /// Its tags (`kind:id`, e.g. `student:7`): what [`Query`](crate::store::Query) items match besides the type.
    /// Set by the derive from fields marked `#[tag]`, or with [`with_tags`](Self::with_tags).
    pub tags: Vec<String>,
}

impl NewEvent {
    /// An event from raw parts, with a fresh id and empty metadata.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            event_id: EventId::new(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Metadata::new(),
            tags: Vec::new(),
        }
    }

    /// Encodes a typed event, with a fresh id.
    ///
    /// # Errors
    /// [`EncodeError`] when the payload cannot be represented as JSON.
    pub fn from_domain<E: DomainEvent>(event: &E, metadata: Metadata) -> Result<Self, EncodeError> {
        Ok(Self {
            event_id: EventId::new(),
            event_type: Cow::Borrowed(event.event_type()),
            schema_version: event.schema_version(),
            payload: event.encode()?,
            metadata,
            tags: event.tags(),
        })
    }

    /// Replaces the id (to make an append idempotent across retries, choose the id before the first try).
    pub fn with_event_id(mut self, event_id: EventId) -> Self {
        self.event_id = event_id;
        self
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Adds `tags` (`kind:id`) to the event's own.
    ///
    /// ```
    /// use es_core::NewEvent;
    ///
    /// let enrolled = NewEvent::new("Enrolled", 1, serde_json::json!({})).with_tags(["student:7", "course:3"]);
    /// assert_eq!(enrolled.tags, ["student:7", "course:3"]);
    /// ```
    pub fn with_tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }
}

/// An event as stored: where it is (stream, version, global position), what it is and when it was recorded.
///
/// ```
/// # use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
/// # use es_memory::InMemoryEventStore;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("light-1")?;
/// store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("SwitchedOn", 1, serde_json::json!({}))]).await?;
/// let events = store.read_all(Position::START, 10).await?;
/// assert_eq!(events[0].stream_id, stream);
/// assert_eq!(events[0].version.get(), 1);
/// assert_eq!(events[0].event_type, "SwitchedOn");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The stream the event belongs to.
    pub stream_id: StreamId,
    /// Its version in that stream (1-based).
    pub version: Version,
    /// Its position in the global order.
    pub position: Position,
    /// Its id.
    pub event_id: EventId,
    /// Its type name as stored.
    pub event_type: String,
    /// The schema version its payload was written with.
    pub schema_version: u32,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// The metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Its tags, as appended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl RecordedEvent {
    /// Decodes the payload into a typed event, through the type's [`UPCASTERS`](DomainEvent::UPCASTERS) when it
    /// was stored at an older schema version.
    ///
    /// # Errors
    /// [`EventDecodeError`] naming the stream, version, position and type of the event that did not decode.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, EventDecodeError> {
        crate::event::decode_payload(&self.event_type, self.schema_version, &self.payload).map_err(
            |source| EventDecodeError {
                stream: self.stream_id.clone(),
                version: self.version,
                position: self.position,
                event_type: self.event_type.clone(),
                schema_version: self.schema_version,
                source,
            },
        )
    }
}
