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

/// The columns of [`EVENT_COLUMNS`](crate::schema::EVENT_COLUMNS), by position (names for error messages).
const COLUMNS: [&str; 10] = [
    "transaction_id",
    "global_position",
    "stream_id",
    "stream_version",
    "event_id",
    "event_type",
    "schema_version",
    "payload",
    "metadata",
    "created_at",
];

/// Reads one row selected with the store's event columns. `stream` is the stream every row belongs to when the
/// query was for one stream: its id is then not decoded and validated again per row.
pub(crate) fn recorded_event(
    row: &PgRow,
    stream: Option<&StreamId>,
) -> Result<RecordedEvent, StoreError> {
    let transaction_id: i64 = get(row, 0, Position::START)?;
    let global_position: i64 = get(row, 1, Position::START)?;
    let at = position(transaction_id, global_position);
    let stream_id = match stream {
        Some(stream) => stream.clone(),
        None => {
            let text: &str = get(row, 2, at)?;
            StreamId::new(text).map_err(|e| corrupt(at, format!("stream id: {e}")))?
        }
    };
    let version: i64 = get(row, 3, at)?;
    let schema_version: i32 = get(row, 6, at)?;
    let Json(metadata): Json<Metadata> = get(row, 8, at)?;
    Ok(RecordedEvent {
        stream_id,
        version: Version::new(
            u64::try_from(version).map_err(|_| corrupt(at, format!("stream version {version}")))?,
        ),
        position: at,
        event_id: EventId::from_uuid(get(row, 4, at)?),
        event_type: get(row, 5, at)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(at, format!("schema version {schema_version}")))?,
        payload: get(row, 7, at)?,
        metadata,
        recorded_at: get::<DateTime<Utc>>(row, 9, at)?,
    })
}

fn get<'r, T>(row: &'r PgRow, column: usize, at: Position) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| corrupt(at, format!("column `{}`: {e}", COLUMNS[column])))
}

fn corrupt(position: Position, reason: String) -> StoreError {
    StoreError::Corrupt { position, reason }
}
