//! An append: one `BEGIN IMMEDIATE` transaction on the writer connection.

use chrono::Utc;
use es_core::backend::{StoredAt, retry_of};
use es_core::store::AppendResult;
use es_core::{EventId, ExpectedVersion, NewEvent, StoreError, StreamId, Version};
use sqlx::SqliteConnection;

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, position, version};
use crate::store::Failure;

/// Where the batch's ids are stored, in batch order.
type Stored = Vec<Option<(String, i64, i64)>>;

pub(crate) async fn append(
    store: &SqliteEventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendResult, StoreError> {
    store.inner.limits.check(stream, &events)?;
    let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
    let mut rows = Vec::with_capacity(events.len());
    for event in &events {
        let encode = |what: &str, e: serde_json::Error| StoreError::InvalidEvent {
            stream: stream.clone(),
            event_id: event.event_id,
            event_type: event.event_type.to_string(),
            reason: format!("its {what} does not encode: {e}"),
        };
        let payload = serde_json::to_string(&event.payload).map_err(|e| encode("payload", e))?;
        let metadata = serde_json::to_string(&event.metadata).map_err(|e| encode("metadata", e))?;
        rows.push((
            event.event_id.as_uuid(),
            event.event_type.to_string(),
            event.schema_version,
            payload,
            metadata,
        ));
    }
    let mut tx = store.begin().await.map_err(backend("append"))?;
    let conn: &mut SqliteConnection = &mut tx;
    let (ids, rows) = (&ids, &rows);
    let result = async {
        {
            {
                let current: Option<i64> =
                    sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = ?1")
                        .bind(stream.as_str())
                        .fetch_one(&mut *conn)
                        .await?;
                let current = current.map(version);
                let stored = stored(&mut *conn, ids).await?;
                let at: Vec<Option<StoredAt<'_>>> = stored
                    .iter()
                    .map(|s| {
                        s.as_ref().map(|(stream, v, global)| StoredAt {
                            stream,
                            version: version(*v),
                            position: position(*global),
                        })
                    })
                    .collect();
                if let Some((first, last)) = retry_of(stream, expected, current, ids, &at)? {
                    return Ok(AppendResult {
                        first_version: first.version,
                        last_version: last.version,
                        first_position: first.position,
                        last_position: last.position,
                        replayed: true,
                    });
                }
                if !expected.accepts(current) {
                    return Err(Failure::Refused(StoreError::Conflict {
                        stream: stream.clone(),
                        expected,
                        actual: current,
                    }));
                }
                let base = current.map_or(0, Version::get);
                let now = micros(Utc::now());
                let mut first = None;
                let mut last = 0;
                for (offset, (id, event_type, schema_version, payload, metadata)) in rows.iter().enumerate() {
                    let global: i64 = sqlx::query_scalar(
                        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, \
                         payload, metadata, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                         RETURNING global_position",
                    )
                    .bind(stream.as_str())
                    .bind(i64::try_from(base + offset as u64 + 1).unwrap_or(i64::MAX))
                    .bind(id)
                    .bind(event_type)
                    .bind(i64::from(*schema_version))
                    .bind(payload)
                    .bind(metadata)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    first.get_or_insert(global);
                    last = global;
                }
                let first = first.unwrap_or(last);
                Ok(AppendResult {
                    first_version: Version::new(base + 1),
                    last_version: Version::new(base + rows.len() as u64),
                    first_position: position(first),
                    last_position: position(last),
                    replayed: false,
                })
            }
        }
    }
    .await;
    let result = SqliteEventStore::commit(tx, "append", result).await?;
    if !result.replayed {
        store.committed(result.last_position.prepare);
    }
    Ok(result)
}

/// Where each of `ids` is stored (stream, version, position), in the order of `ids`.
async fn stored(conn: &mut SqliteConnection, ids: &[EventId]) -> Result<Stored, sqlx::Error> {
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
