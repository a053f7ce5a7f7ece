//! The load fast path: a stream's rows folded from the row buffers, payloads as text, no `RecordedEvent`s built.

use es_core::backend::{EventView, FoldRead, PayloadView, Visit};
use es_core::{StoreError, StreamId, Version};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::time;

/// Only what a fold decodes (and the time, for loads as of a time).
const FOLD: &str = "SELECT stream_version, event_type, schema_version, payload, created_at FROM events \
     WHERE stream_id = ?1 AND stream_version >= ?2 AND stream_version < ?3 ORDER BY stream_version";

pub(crate) async fn fold_stream(
    store: &SqliteEventStore,
    stream: &StreamId,
    read: FoldRead,
    visit: &mut Visit<'_>,
) -> Result<usize, StoreError> {
    // Versions are dense, so a limit is a version range.
    let end = read.from.get().saturating_add(read.limit as u64);
    let rows = sqlx::query(FOLD)
        .bind(stream.as_str())
        .bind(i64::try_from(read.from.get()).unwrap_or(i64::MAX))
        .bind(i64::try_from(end).unwrap_or(i64::MAX))
        .fetch_all(store.readers())
        .await
        .map_err(backend("fold_stream"))?;
    for row in &rows {
        if visit(view(row, stream, read.recorded_at)?).is_break() {
            break;
        }
    }
    Ok(rows.len())
}

/// The view of one row; a row that does not read back is [`StoreError::CorruptStream`] naming its version.
fn view<'r>(
    row: &'r SqliteRow,
    stream: &StreamId,
    with_time: bool,
) -> Result<EventView<'r>, StoreError> {
    let corrupt = |version: i64, reason: String| StoreError::CorruptStream {
        stream: stream.clone(),
        version: Version::new(u64::try_from(version).unwrap_or_default()),
        reason,
    };
    let version: i64 = row
        .try_get(0)
        .map_err(|e| corrupt(0, format!("its version does not read: {e}")))?;
    let fail =
        |what: &str, e: sqlx::Error| corrupt(version, format!("its {what} does not read: {e}"));
    let schema_version: i64 = row.try_get(2).map_err(|e| fail("schema version", e))?;
    let recorded_at = match with_time {
        true => Some(time(row.try_get(4).map_err(|e| fail("time", e))?)),
        false => None,
    };
    Ok(EventView {
        version: Version::new(
            u64::try_from(version).map_err(|_| corrupt(version, format!("version {version}")))?,
        ),
        event_type: row.try_get(1).map_err(|e| fail("event type", e))?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(version, format!("schema version {schema_version}")))?,
        payload: PayloadView::Text(row.try_get(3).map_err(|e| fail("payload", e))?),
        recorded_at,
    })
}
