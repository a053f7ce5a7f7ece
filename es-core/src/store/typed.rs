//! Typed reads: stored events decoded (through upcasters) into the application's event types.

use async_trait::async_trait;

use crate::event::DomainEvent;
use crate::store::error::{EventDecodeError, StoreError};
use crate::store::{EventStore, RecordedEvent, StreamId, StreamRead};

/// A decoded event with the stored record it came from (ids, versions, position, metadata).
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded<E> {
    /// The typed event, upcast to today's schema.
    pub event: E,
    /// The event as stored.
    pub record: RecordedEvent,
}

/// A typed read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event did not decode; names the event.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
}

/// Typed reads on every [`EventStore`].
///
/// ```
/// use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, StreamId, StreamRead};
/// use es_core::evolution::Upcaster;
/// use es_core::store::TypedRead;
/// use es_memory::InMemoryEventStore;
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// #[event(upcasters = &[Upcaster::new("SwitchedOn", 1, |_| serde_json::json!({ "lux": 100 }))])]
/// enum Light { #[event(version = 2)] SwitchedOn { lux: u32 } }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("light-1")?;
/// // Written by an old release: version 1 had no `lux`.
/// store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("SwitchedOn", 1, serde_json::json!({}))]).await?;
///
/// let events = store.read_stream_as::<Light>(&stream, StreamRead::forward()).await?;
/// assert_eq!(events[0].event, Light::SwitchedOn { lux: 100 });
/// # Ok(()) }
/// ```
#[async_trait]
pub trait TypedRead: EventStore {
    /// [`EventStore::read_stream`], each event upcast (through `E`'s [`UPCASTERS`](DomainEvent::UPCASTERS)) and
    /// decoded into `E`.
    ///
    /// # Errors
    /// [`ReadError::Store`], or [`ReadError::Decode`] naming the first event that does not decode.
    async fn read_stream_as<E: DomainEvent>(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<Decoded<E>>, ReadError> {
        let records = self.read_stream(stream, read).await?;
        let mut decoded = Vec::with_capacity(records.len());
        for record in records {
            let event = record.decode::<E>()?;
            decoded.push(Decoded { event, record });
        }
        Ok(decoded)
    }
}

impl<S: EventStore + ?Sized> TypedRead for S {}
