//! Decoding rows into events.

use chrono::{DateTime, Utc};
use es_core::backend::{EventView, PayloadView, Visit};
use es_core::store::{CorruptEvent, FeedBatch, serde_summary};
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
const COLUMNS: [&str; 11] = [
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
    "tags",
];

/// Reads one row selected with the store's event columns. `stream` is the stream every row belongs to when the
/// query was for one stream: its id is then not decoded and validated again per row. A row that does not read
/// back is a [`StoreError::Corrupt`] naming it by what did read (position, stream, version, id, type).
pub(crate) fn recorded_event(
    row: &PgRow,
    stream: Option<&StreamId>,
) -> Result<RecordedEvent, StoreError> {
    // The identifying columns first, each kept with its error, so that a failure anywhere can name the event by
    // what did read.
    let read_transaction_id: Result<i64, _> = row.try_get(0);
    let read_global_position: Result<i64, _> = row.try_get(1);
    let read_version: Result<i64, _> = row.try_get(3);
    let read_event_id: Result<uuid::Uuid, _> = row.try_get(4);
    let (transaction_id, global_position, version, event_id) = (
        *read_transaction_id.as_ref().unwrap_or(&0),
        *read_global_position.as_ref().unwrap_or(&0),
        *read_version.as_ref().unwrap_or(&0),
        *read_event_id.as_ref().unwrap_or(&uuid::Uuid::nil()),
    );
    let event_type: Result<&str, _> = row.try_get(5);
    let stream_text = match stream {
        Some(stream) => Ok(stream.as_str()),
        None => row.try_get::<&str, _>(2),
    };
    let corrupt = |reason: String| {
        StoreError::Corrupt(Box::new(CorruptEvent {
            position: position(transaction_id, global_position),
            stream: stream_text.as_deref().unwrap_or_default().to_owned(),
            version: Version::new(u64::try_from(version).unwrap_or_default()),
            event_id: EventId::from_uuid(event_id),
            event_type: event_type.as_deref().unwrap_or_default().to_owned(),
            reason,
        }))
    };
    let column = |index: usize| {
        move |e: sqlx::Error| corrupt(format!("column `{}`: {}", COLUMNS[index], column_error(&e)))
    };
    read_transaction_id.map_err(column(0))?;
    read_global_position.map_err(column(1))?;
    read_version.map_err(column(3))?;
    read_event_id.map_err(column(4))?;
    let stream_id = match stream {
        Some(stream) => stream.clone(),
        None => {
            let text = stream_text
                .as_deref()
                .map_err(|e| corrupt(format!("column `stream_id`: {e}")))?;
            StreamId::new(text).map_err(|e| corrupt(format!("stream id: {e}")))?
        }
    };
    let event_type = event_type
        .as_deref()
        .map_err(|e| corrupt(format!("column `event_type`: {e}")))?;
    if transaction_id < 0 || global_position < 0 {
        return Err(corrupt(format!(
            "position {transaction_id}/{global_position}"
        )));
    }
    let version =
        u64::try_from(version).map_err(|_| corrupt(format!("stream version {version}")))?;
    let schema_version: i32 = row.try_get(6).map_err(column(6))?;
    let Json(metadata): Json<Metadata> = row.try_get(8).map_err(column(8))?;
    Ok(RecordedEvent {
        stream_id,
        version: Version::new(version),
        position: position(transaction_id, global_position),
        event_id: EventId::from_uuid(event_id),
        event_type: event_type.to_owned(),
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("schema version {schema_version}")))?,
        payload: row.try_get(7).map_err(column(7))?,
        metadata,
        recorded_at: row.try_get::<DateTime<Utc>, _>(9).map_err(column(9))?,
        tags: row
            .try_get::<Option<Vec<String>>, _>(10)
            .map_err(column(10))?
            .unwrap_or_default(),
    })
}

/// Decodes a page of feed rows up to the first that does not read back: the events before it, or, when it is the
/// first, its error (the next read, after its position, goes on past it).
pub(crate) fn feed_page(rows: &[PgRow]) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match recorded_event(row, None) {
            Ok(event) => events.push(event),
            Err(error) if events.is_empty() => return Err(error),
            Err(_) => break,
        }
    }
    Ok(events)
}

/// Decodes a filtered feed page (`read_filtered`): the selected events up to the first that does not read back,
/// and how far the page read (its last row, or the row before a corrupt one). A corrupt first row is its error.
pub(crate) fn filtered_page(rows: &[PgRow]) -> Result<Option<FeedBatch>, StoreError> {
    let mut events = Vec::with_capacity(rows.len().saturating_sub(1));
    let mut through = None;
    for row in rows {
        if row.try_get::<bool, _>(11).unwrap_or(false) {
            let tx: i64 = row.try_get(0).unwrap_or_default();
            let pos: i64 = row.try_get(1).unwrap_or_default();
            through = Some(position(tx, pos));
            continue;
        }
        match recorded_event(row, None) {
            Ok(event) => events.push(event),
            Err(error) if events.is_empty() => return Err(error),
            Err(_) => {
                through = events.last().map(|e: &RecordedEvent| e.position);
                break;
            }
        }
    }
    Ok(through.map(|through| FeedBatch { events, through }))
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

/// A column's decode error, without the payload values serde quotes ([`serde_summary`]).
fn column_error(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::ColumnDecode { source, .. } => {
            match source.downcast_ref::<serde_json::Error>() {
                Some(serde) => serde_summary(serde),
                None => source.to_string(),
            }
        }
        other => other.to_string(),
    }
}
