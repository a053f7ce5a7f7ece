//! What every store accepts in one event: the same bounds on every backend, checked before anything is written.

use serde_json::Value;

use crate::store::error::StoreError;
use crate::store::{Metadata, NewEvent, StreamId};

/// The bounds an event must keep to be stored, the same on every backend (configure them on the store:
/// `InMemoryEventStore::with_limits`, `PgEventStoreBuilder::limits`). An append that breaks one fails with
/// [`StoreError::InvalidEvent`] naming the event, and writes nothing.
///
/// - **Size**: the payload and metadata together, as JSON text (strings counted before escaping, metadata's ids and
///   time at their usual length), at most
///   [`max_event_bytes`](Self::max_event_bytes): 16 MiB by default. PostgreSQL's own limit for a `jsonb` value is
///   255 MiB and it fails with a raw error above it; large events also make every read of their stream slow, so
///   store large documents elsewhere and reference them.
/// - **Type names**: not empty, at most [`max_type_len`](Self::max_type_len) bytes (255), no control characters
///   (PostgreSQL's text cannot hold NUL; the rest make names unreadable in logs).
/// - **Strings in payloads and metadata** cannot hold the character U+0000 (PostgreSQL's `jsonb` cannot store it).
///
/// ```
/// use es_core::{NewEvent, StoreError, StreamId};
/// use es_core::store::EventLimits;
///
/// let limits = EventLimits::default().max_event_bytes(1_024);
/// let stream = StreamId::new("doc-1")?;
/// let big = NewEvent::new("Written", 1, serde_json::json!({ "text": "x".repeat(2_000) }));
/// assert!(matches!(limits.check(&stream, &[big]), Err(StoreError::InvalidEvent { .. })));
/// let odd = NewEvent::new("Bad\0Type", 1, serde_json::json!({}));
/// assert!(limits.check(&stream, &[odd]).is_err());
/// # Ok::<(), es_core::store::StreamIdError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventLimits {
    /// The largest payload plus metadata, in bytes of JSON text.
    pub max_event_bytes: usize,
    /// The longest event type name, in bytes.
    pub max_type_len: usize,
}

impl EventLimits {
    /// The default size bound: 16 MiB.
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

    /// The longest type name any store accepts, in bytes.
    pub const MAX_TYPE_LEN: usize = 255;

    /// Sets the size bound (at least 1 KiB).
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes.max(1_024);
        self
    }

    /// Checks every event of a batch for `stream`, and what [`validate_append`](crate::backend::validate_append) checks.
    ///
    /// # Errors
    /// [`StoreError::InvalidEvent`] naming the first event out of bounds, and the errors of `validate_append`.
    pub fn check(&self, stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
        crate::store::validate_batch(stream, events)?;
        for event in events {
            let invalid = |reason: String| StoreError::InvalidEvent {
                stream: stream.clone(),
                event_id: event.event_id,
                event_type: event.event_type.escape_debug().to_string(),
                reason,
            };
            let name = &event.event_type;
            if name.len() > self.max_type_len {
                return Err(invalid(format!(
                    "the event type name is {} bytes long, at most {} allowed",
                    name.len(),
                    self.max_type_len
                )));
            }
            if let Some(index) = name.find(char::is_control) {
                return Err(invalid(format!(
                    "the event type name holds a control character at byte {index}"
                )));
            }
            let mut size = Size::default();
            size.add(&event.payload);
            size.metadata(&event.metadata);
            if size.nul {
                return Err(invalid(
                    "a string in the payload or metadata holds the character U+0000, which no store keeps".to_owned(),
                ));
            }
            if size.bytes > self.max_event_bytes {
                return Err(invalid(format!(
                    "payload and metadata are {} bytes of JSON, at most {} allowed (EventLimits::max_event_bytes)",
                    size.bytes, self.max_event_bytes
                )));
            }
        }
        Ok(())
    }
}

impl Default for EventLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
            max_type_len: Self::MAX_TYPE_LEN,
        }
    }
}

/// A JSON value's text length, and whether a string in it holds U+0000.
#[derive(Default)]
struct Size {
    bytes: usize,
    nul: bool,
}

impl Size {
    fn add(&mut self, value: &Value) {
        match value {
            Value::Null | Value::Bool(true) => self.bytes += 4,
            Value::Bool(false) => self.bytes += 5,
            Value::Number(number) => self.bytes += number_len(number),
            Value::String(text) => self.string(text),
            Value::Array(items) => {
                self.bytes += 2 + items.len().saturating_sub(1);
                items.iter().for_each(|item| self.add(item));
            }
            Value::Object(map) => {
                self.bytes += 2 + map.len().saturating_sub(1) + map.len();
                for (key, item) in map {
                    self.string(key);
                    self.add(item);
                }
            }
        }
    }

    /// Metadata's text length, without serializing it: its ids and time at their fixed JSON lengths.
    fn metadata(&mut self, metadata: &Metadata) {
        const ID: usize = r#","correlation_id":"00000000-0000-0000-0000-000000000000""#.len();
        const AT: usize = r#","occurred_at":"2026-12-02T20:38:00.000000000Z""#.len();
        self.bytes += 2
            + ID * (usize::from(metadata.correlation_id.is_some())
                + usize::from(metadata.causation_id.is_some()))
            + AT * usize::from(metadata.occurred_at.is_some());
        if !metadata.extra.is_empty() {
            self.bytes += r#","extra":{}"#.len();
        }
        for (key, value) in &metadata.extra {
            self.bytes += 2;
            self.string(key);
            self.add(value);
        }
    }

    fn string(&mut self, text: &str) {
        self.bytes += text.len() + 2;
        self.nul |= text.contains('\0');
    }
}

fn number_len(number: &serde_json::Number) -> usize {
    let digits = |n: u64| n.checked_ilog10().map_or(1, |log| log as usize + 1);
    match (number.as_u64(), number.as_i64()) {
        (Some(n), _) => digits(n),
        (None, Some(n)) => digits(n.unsigned_abs()) + 1,
        _ => number.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_length_of_the_json_text() {
        for value in [
            serde_json::json!({ "a": [1, -20, 3.5, null, true, false], "text": "héllo", "o": {} }),
            serde_json::json!([]),
            serde_json::json!(u64::MAX),
        ] {
            let mut size = Size::default();
            size.add(&value);
            assert_eq!(
                size.bytes,
                serde_json::to_string(&value).unwrap().len(),
                "{value}"
            );
        }
    }

    #[test]
    fn metadata_is_counted_near_its_json_length_and_checked_for_nul() {
        let metadata = Metadata::new().with("user", "alice").with("n", 7);
        let mut size = Size::default();
        size.metadata(&metadata);
        let json = serde_json::to_string(&metadata).unwrap().len();
        assert!(size.bytes.abs_diff(json) <= 4, "{} vs {json}", size.bytes);
        assert!(!size.nul);
        size.metadata(&Metadata::new().with("note", "a \u{0} b"));
        assert!(size.nul);
    }
}
