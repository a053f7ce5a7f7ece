//! Decoding rows into events.

use chrono::{DateTime, Utc};
use es_core::{
    EventId, EventView, Metadata, PayloadView, Position, RecordedEvent, StoreError, StreamId,
    Version, Visit,
};
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

/// Calls `visit` with a view of each row selected by a `fold_stream` statement, payloads as text straight from
/// the row buffer; returns how many rows there were. The statements are ours and their column types fixed by the
/// schema, so columns are decoded without sqlx's per-value type check (a fifth of a load's client time).
pub(crate) fn visit_rows(
    rows: &[PgRow],
    stream: &StreamId,
    visit: &mut Visit<'_>,
) -> Result<usize, StoreError> {
    let corrupt_row = |version: i64, reason: String| StoreError::CorruptStream {
        stream: stream.clone(),
        version: Version::new(u64::try_from(version).unwrap_or_default()),
        reason,
    };
    for row in rows {
        let version: i64 = unchecked(row, 0).map_err(|e| corrupt_row(0, e))?;
        let fail = |reason: String| corrupt_row(version, reason);
        let schema_version: i32 = unchecked(row, 2).map_err(fail)?;
        let recorded_at = match row.len() > 4 {
            true => Some(unchecked::<DateTime<Utc>>(row, 4).map_err(fail)?),
            false => None,
        };
        let view = EventView {
            version: Version::new(
                u64::try_from(version).map_err(|_| fail(format!("stream version {version}")))?,
            ),
            event_type: unchecked(row, 1).map_err(fail)?,
            schema_version: u32::try_from(schema_version)
                .map_err(|_| fail(format!("schema version {schema_version}")))?,
            payload: PayloadView::Text(jsonb_text(row, 3).map_err(fail)?),
            recorded_at,
        };
        if visit(view).is_break() {
            break;
        }
    }
    Ok(rows.len())
}

fn unchecked<'r, T>(row: &'r PgRow, column: usize) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Postgres>,
{
    row.try_get_unchecked(column)
        .map_err(|e| format!("column {column}: {e}"))
}

/// A `jsonb` column's JSON text: binary jsonb is a version byte (1) and the text.
fn jsonb_text(row: &PgRow, column: usize) -> Result<&str, String> {
    let value = row
        .try_get_raw(column)
        .map_err(|e| format!("column {column}: {e}"))?;
    if value.format() != sqlx::postgres::PgValueFormat::Binary {
        return Err(format!("column {column} came as text"));
    }
    let bytes = value
        .as_bytes()
        .map_err(|e| format!("column {column}: {e}"))?;
    let text = match bytes.split_first() {
        Some((1, text)) => text,
        _ => return Err("payload is not jsonb of version 1".to_owned()),
    };
    std::str::from_utf8(text).map_err(|e| format!("payload is not UTF-8: {e}"))
}
