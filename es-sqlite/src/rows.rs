//! Rows to values: events, positions, times.

use chrono::{DateTime, Utc};
use es_core::store::{CorruptEvent, serde_summary};
use es_core::{EventId, Metadata, Position, RecordedEvent, StoreError, StreamId, Version};
use uuid::Uuid;

/// The columns of an event row, in the order [`EventRow`] holds them.
pub(crate) const EVENT_COLUMNS: &str = "global_position, stream_id, stream_version, event_id, event_type, \
     schema_version, payload, metadata, created_at, tags";

pub(crate) type EventRow = (
    i64,
    String,
    i64,
    Uuid,
    String,
    i64,
    String,
    String,
    i64,
    Option<String>,
);

/// A row's position: its row id, both halves.
pub(crate) fn position(global: i64) -> Position {
    let n = u64::try_from(global).unwrap_or(0);
    Position::new(n, n)
}

/// The row id a position stands for (the sequence half; positions of this store have both halves equal).
pub(crate) fn position_of(position: Position) -> i64 {
    i64::try_from(position.prepare).unwrap_or(i64::MAX)
}

/// Microseconds since the epoch.
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The time `micros` microseconds after the epoch (the epoch itself when out of range).
pub(crate) fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// A version column.
pub(crate) fn version(v: i64) -> Version {
    Version::new(u64::try_from(v).unwrap_or(0))
}

/// A page of the global feed: the events up to the first row that does not read back, which is the page's error
/// when it comes first (so a reader gets every good event before it, then the error in its place).
pub(crate) fn feed_page(rows: Vec<EventRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match recorded(row) {
            Ok(event) => events.push(event),
            Err(error) if events.is_empty() => return Err(error),
            Err(_) => break,
        }
    }
    Ok(events)
}

/// The event of a row; a row that does not read back (edited by hand, written by another program) is
/// [`StoreError::Corrupt`] naming what did read.
pub(crate) fn recorded(row: EventRow) -> Result<RecordedEvent, StoreError> {
    let (
        global,
        stream,
        stream_version,
        event_id,
        event_type,
        schema_version,
        payload,
        metadata,
        created_at,
        tags,
    ) = row;
    let corrupt = |reason: String| {
        StoreError::Corrupt(Box::new(CorruptEvent {
            position: position(global),
            stream: stream.clone(),
            version: version(stream_version),
            event_id: EventId::from_uuid(event_id),
            event_type: event_type.clone(),
            reason,
        }))
    };
    let stream_id =
        StreamId::new(&stream).map_err(|e| corrupt(format!("its stream id does not read: {e}")))?;
    let payload: serde_json::Value = serde_json::from_str(&payload)
        .map_err(|e| corrupt(format!("its payload is not JSON: {}", serde_summary(&e))))?;
    let metadata: Metadata = serde_json::from_str(&metadata)
        .map_err(|e| corrupt(format!("its metadata does not read: {}", serde_summary(&e))))?;
    let schema_version = u32::try_from(schema_version)
        .map_err(|_| corrupt(format!("schema version {schema_version} is out of range")))?;
    let tags: Vec<String> = match tags {
        None => Vec::new(),
        Some(tags) => serde_json::from_str(&tags)
            .map_err(|e| corrupt(format!("its tags do not read: {}", serde_summary(&e))))?,
    };
    Ok(RecordedEvent {
        stream_id,
        version: version(stream_version),
        position: position(global),
        event_id: EventId::from_uuid(event_id),
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at: time(created_at),
        tags,
    })
}
