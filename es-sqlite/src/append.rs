//! An append: one `BEGIN IMMEDIATE` transaction on the writer connection. The happy path is one lookup of the
//! stream's version and one multi-row `INSERT` per 200 events; the event ids are looked up only when the
//! expectation fails or an id is stored already (a retry, or a duplicate).

use chrono::Utc;
use es_core::backend::{StoredAt, retry_of};
use es_core::store::AppendResult;
use es_core::{EventId, ExpectedVersion, NewEvent, StoreError, StreamId, Version};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, position, version};
use crate::transaction::Failure;

/// Rows per `INSERT` statement: 9 parameters each, well under SQLite's limit of 32,766.
const ROWS_PER_INSERT: usize = 200;

/// An event encoded for its row.
pub(crate) struct Row {
    id: Uuid,
    event_type: String,
    schema_version: i64,
    payload: String,
    metadata: String,
    /// Its tags as a JSON array; `None` without tags.
    tags: Option<String>,
}

pub(crate) async fn append(
    store: &SqliteEventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendResult, StoreError> {
    store.inner.limits.check(stream, &events)?;
    let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
    let rows = encode(stream, &events)?;
    let mut tx = store.begin().await.map_err(backend("append"))?;
    let result = write(&mut tx, stream, expected, &ids, &rows).await;
    let result = SqliteEventStore::commit(tx, "append", result).await?;
    if !result.replayed {
        store.committed(result.last_position.prepare);
    }
    Ok(result)
}

pub(crate) fn encode(stream: &StreamId, events: &[NewEvent]) -> Result<Vec<Row>, StoreError> {
    events
        .iter()
        .map(|event| {
            let encode = |what: &str, e: serde_json::Error| StoreError::InvalidEvent {
                stream: stream.clone(),
                event_id: event.event_id,
                event_type: event.event_type.to_string(),
                reason: format!("its {what} does not encode: {e}"),
            };
            Ok(Row {
                id: event.event_id.as_uuid(),
                event_type: event.event_type.to_string(),
                schema_version: i64::from(event.schema_version),
                payload: serde_json::to_string(&event.payload).map_err(|e| encode("payload", e))?,
                metadata: serde_json::to_string(&event.metadata)
                    .map_err(|e| encode("metadata", e))?,
                tags: match event.tags.is_empty() {
                    true => None,
                    false => {
                        Some(serde_json::to_string(&event.tags).map_err(|e| encode("tags", e))?)
                    }
                },
            })
        })
        .collect()
}

/// Inside the transaction: checks the expectation, writes the rows, or answers a retry with where its events are.
async fn write(
    conn: &mut SqliteConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    ids: &[EventId],
    rows: &[Row],
) -> Result<AppendResult, Failure> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = ?1")
            .bind(stream.as_str())
            .fetch_one(&mut *conn)
            .await?;
    let current = current.map(version);
    let mut refused = None;
    if expected.accepts(current) {
        let base = current.map_or(0, Version::get);
        // A batch of several statements runs in a savepoint, so that a failing one takes the earlier ones back
        // before the ids are looked up (a failing statement leaves none of its own rows).
        let several = rows.len() > ROWS_PER_INSERT;
        if several {
            sqlx::query("SAVEPOINT append_chunks")
                .execute(&mut *conn)
                .await?;
        }
        let inserted = insert(conn, stream, base, rows).await;
        if several {
            if inserted.is_err() {
                sqlx::query("ROLLBACK TO append_chunks")
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("RELEASE append_chunks")
                .execute(&mut *conn)
                .await?;
        }
        match inserted {
            Ok((first, last)) => {
                return Ok(AppendResult {
                    first_version: Version::new(base + 1),
                    last_version: Version::new(base + rows.len() as u64),
                    first_position: position(first),
                    last_position: position(last),
                    replayed: false,
                });
            }
            // An id is stored already: the ids say whether this is a retry.
            Err(error) if is_unique_violation(&error) => refused = Some(error),
            Err(error) => return Err(error.into()),
        }
    }
    let stored = stored(conn, ids).await?;
    match retry_of(stream, expected, current, ids, &stored_at(&stored))? {
        Some((first, last)) => Ok(AppendResult {
            first_version: first.version,
            last_version: last.version,
            first_position: first.position,
            last_position: last.position,
            replayed: true,
        }),
        None => Err(match refused {
            Some(error) => error.into(),
            None => Failure::Refused(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: current,
            }),
        }),
    }
}

/// Inserts `rows` at versions `base + 1 ..`, up to [`ROWS_PER_INSERT`] per statement; returns the first and last
/// positions taken.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    stream: &StreamId,
    base: u64,
    rows: &[Row],
) -> Result<(i64, i64), sqlx::Error> {
    let now = micros(Utc::now());
    let (mut first, mut last) = (i64::MAX, 0);
    for (chunk_index, chunk) in rows.chunks(ROWS_PER_INSERT).enumerate() {
        let mut sql = String::from(
            "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, \
             metadata, created_at, tags) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "" } else { ", " });
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?)");
        }
        sql.push_str(" RETURNING global_position");
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        let chunk_base = base + (chunk_index * ROWS_PER_INSERT) as u64;
        for (offset, row) in chunk.iter().enumerate() {
            query = query
                .bind(stream.as_str())
                .bind(i64::try_from(chunk_base + offset as u64 + 1).unwrap_or(i64::MAX))
                .bind(row.id)
                .bind(row.event_type.as_str())
                .bind(row.schema_version)
                .bind(row.payload.as_str())
                .bind(row.metadata.as_str())
                .bind(now)
                .bind(row.tags.as_deref());
        }
        // One writer at a time: the rows take consecutive positions, in the order of VALUES, whatever order
        // RETURNING lists them in.
        let (mut chunk_first, mut chunk_last) = (i64::MAX, 0);
        for global in query.fetch_all(&mut *conn).await? {
            chunk_first = chunk_first.min(global);
            chunk_last = chunk_last.max(global);
        }
        for (offset, row) in chunk.iter().enumerate() {
            if let Some(tags) = &row.tags {
                sqlx::query(
                    "INSERT OR IGNORE INTO event_tags (tag, global_position) SELECT value, ?2 FROM json_each(?1)",
                )
                .bind(tags.as_str())
                .bind(chunk_first + offset as i64)
                .execute(&mut *conn)
                .await?;
            }
        }
        first = first.min(chunk_first);
        last = last.max(chunk_last);
    }
    Ok((first, last))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The rows of [`stored`] as [`retry_of`] reads them.
pub(crate) fn stored_at(stored: &[Option<(String, i64, i64)>]) -> Vec<Option<StoredAt<'_>>> {
    stored
        .iter()
        .map(|s| {
            s.as_ref().map(|(stream, v, global)| StoredAt {
                stream,
                version: version(*v),
                position: position(*global),
            })
        })
        .collect()
}

/// Where each of `ids` is stored (stream, version, position), in the order of `ids`.
pub(crate) async fn stored(
    conn: &mut SqliteConnection,
    ids: &[EventId],
) -> Result<Vec<Option<(String, i64, i64)>>, sqlx::Error> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT stream_id, stream_version, global_position FROM events WHERE event_id = ?1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await?;
        found.push(row);
    }
    Ok(found)
}
