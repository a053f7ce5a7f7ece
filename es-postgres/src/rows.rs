//! Decoding rows into events.

use chrono::{DateTime, Utc};
use es_core::{EventId, Metadata, Position, RecordedEvent, StoreError, StreamId, Version};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

/// A position from its stored halves.
pub(crate) fn position(transaction_id: i64, global_position: i64) -> Position {
    Position::new(
        u64::try_from(transaction_id).unwrap_or_default(),
        u64::try_from(global_position).unwrap_or_default(),
    )
}

/// A position half as a bind parameter; values beyond `i64::MAX` (never produced by this store) saturate.
pub(crate) fn bind_half(half: u64) -> i64 {
    i64::try_from(half).unwrap_or(i64::MAX)
}

/// Reads one row selected with the store's event columns.
pub(crate) fn recorded_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let transaction_id: i64 = get(row, "transaction_id", Position::START)?;
    let global_position: i64 = get(row, "global_position", Position::START)?;
    let at = position(transaction_id, global_position);
    let stream: String = get(row, "stream_id", at)?;
    let stream_id = StreamId::new(&stream).map_err(|e| corrupt(at, format!("stream id: {e}")))?;
    let version: i64 = get(row, "stream_version", at)?;
    let schema_version: i32 = get(row, "schema_version", at)?;
    let Json(metadata): Json<Metadata> = get(row, "metadata", at)?;
    Ok(RecordedEvent {
        stream_id,
        version: Version::new(
            u64::try_from(version).map_err(|_| corrupt(at, format!("stream version {version}")))?,
        ),
        position: at,
        event_id: EventId::from_uuid(get(row, "event_id", at)?),
        event_type: get(row, "event_type", at)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(at, format!("schema version {schema_version}")))?,
        payload: get(row, "payload", at)?,
        metadata,
        recorded_at: get::<DateTime<Utc>>(row, "created_at", at)?,
    })
}

fn get<'r, T>(row: &'r PgRow, column: &str, at: Position) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| corrupt(at, format!("column `{column}`: {e}")))
}

fn corrupt(position: Position, reason: String) -> StoreError {
    StoreError::Corrupt { position, reason }
}
