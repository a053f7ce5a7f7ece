//! The result of an append, and the checks every backend runs on a batch before writing it.

use std::collections::HashSet;

use crate::store::error::{DuplicateReason, StoreError};
use crate::store::{EventLimits, NewEvent, Position, StreamId, Version};

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
/// use es_core::{NewEvent, StoreError, StreamId};
/// use es_core::backend::validate_append;
///
/// let stream = StreamId::new("s-1")?;
/// assert!(matches!(validate_append(&stream, &[]), Err(StoreError::EmptyAppend { .. })));
/// let event = NewEvent::new("Happened", 1, serde_json::json!({}));
/// assert!(validate_append(&stream, &[event.clone()]).is_ok());
/// assert!(matches!(validate_append(&stream, &[event.clone(), event]), Err(StoreError::DuplicateEventId { .. })));
/// # Ok::<(), es_core::store::StreamIdError>(())
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
