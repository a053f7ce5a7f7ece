//! A multi-stream append: every stream's expectation checked and every batch written in one `BEGIN IMMEDIATE`
//! transaction, all or nothing.

use es_core::backend::{retry_of, validate_multi};
use es_core::store::{
    AppendCondition, AppendResult, DuplicateReason, MultiAppend, MultiParts, StreamConflict,
};
use es_core::{EventId, StoreError, StreamId, Version};
use sqlx::SqliteConnection;

use crate::SqliteEventStore;
use crate::append::{Row, encode, insert, stored, stored_at};
use crate::error::backend;
use crate::rows::{position, version};
use crate::transaction::Failure;

/// One stream's part, encoded.
struct Part {
    stream: StreamId,
    expected: es_core::ExpectedVersion,
    ids: Vec<EventId>,
    rows: Vec<Row>,
}

pub(crate) async fn append_multi(
    store: &SqliteEventStore,
    append: MultiAppend,
) -> Result<Vec<AppendResult>, StoreError> {
    validate_multi(&append)?;
    let MultiParts {
        appends,
        checks,
        condition,
    } = append.into_parts();
    let mut parts = Vec::with_capacity(appends.len());
    for part in appends {
        store.inner.limits.check(&part.stream, &part.events)?;
        parts.push(Part {
            ids: part.events.iter().map(|e| e.event_id).collect(),
            rows: encode(&part.stream, &part.events)?,
            stream: part.stream,
            expected: part.expected,
        });
    }
    let mut tx = store.begin().await.map_err(backend("append_multi"))?;
    let result = write(&mut tx, &parts, &checks, condition.as_ref()).await;
    let results = SqliteEventStore::commit(tx, "append_multi", result).await?;
    if let Some(last) = results
        .iter()
        .filter(|r| !r.replayed)
        .map(|r| r.last_position)
        .max()
    {
        store.committed(last.prepare);
    }
    Ok(results)
}

async fn current(
    conn: &mut SqliteConnection,
    stream: &StreamId,
) -> Result<Option<Version>, sqlx::Error> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = ?1")
            .bind(stream.as_str())
            .fetch_one(&mut *conn)
            .await?;
    Ok(current.map(version))
}

async fn write(
    conn: &mut SqliteConnection,
    parts: &[Part],
    checks: &[(StreamId, es_core::ExpectedVersion)],
    condition: Option<&AppendCondition>,
) -> Result<Vec<AppendResult>, Failure> {
    let mut versions = Vec::with_capacity(parts.len());
    for part in parts {
        versions.push(current(conn, &part.stream).await?);
    }
    let mut conflicts = Vec::new();
    for (part, actual) in parts.iter().zip(&versions) {
        if !part.expected.accepts(*actual) {
            conflicts.push(StreamConflict {
                stream: part.stream.clone(),
                expected: part.expected,
                actual: *actual,
            });
        }
    }
    for (stream, expected) in checks {
        let actual = current(conn, stream).await?;
        if !expected.accepts(actual) {
            conflicts.push(StreamConflict {
                stream: stream.clone(),
                expected: *expected,
                actual,
            });
        }
    }
    if !conflicts.is_empty() {
        // A retry of an append that went through finds its streams moved on: its ids tell.
        let first = parts
            .iter()
            .flat_map(|p| p.ids.first())
            .take(1)
            .copied()
            .collect::<Vec<_>>();
        if stored(conn, &first).await?.iter().any(Option::is_some) {
            return replayed(conn, parts, &versions).await;
        }
        return Err(Failure::Refused(StoreError::Conflicts { conflicts }));
    }
    if let Some(condition) = condition {
        crate::query::check(conn, condition).await?;
    }
    // The inserts run in a savepoint: an id stored already takes them all back before the ids are looked up.
    sqlx::query("SAVEPOINT append_multi")
        .execute(&mut *conn)
        .await?;
    let mut results = Vec::with_capacity(parts.len());
    for (part, actual) in parts.iter().zip(&versions) {
        let base = actual.map_or(0, Version::get);
        match insert(conn, &part.stream, base, &part.rows).await {
            Ok((first, last)) => results.push(AppendResult {
                first_version: Version::new(base + 1),
                last_version: Version::new(base + part.rows.len() as u64),
                first_position: position(first),
                last_position: position(last),
                replayed: false,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                sqlx::query("ROLLBACK TO append_multi")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("RELEASE append_multi")
                    .execute(&mut *conn)
                    .await?;
                return replayed(conn, parts, &versions).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    sqlx::query("RELEASE append_multi")
        .execute(&mut *conn)
        .await?;
    Ok(results)
}

/// Some ids are stored: a retry when every part's ids are where this append would have written them.
async fn replayed(
    conn: &mut SqliteConnection,
    parts: &[Part],
    versions: &[Option<Version>],
) -> Result<Vec<AppendResult>, Failure> {
    let mut results = Vec::with_capacity(parts.len());
    for (part, current) in parts.iter().zip(versions) {
        let found = stored(conn, &part.ids).await?;
        match retry_of(
            &part.stream,
            part.expected,
            *current,
            &part.ids,
            &stored_at(&found),
        )? {
            Some((first, last)) => results.push(AppendResult {
                first_version: first.version,
                last_version: last.version,
                first_position: first.position,
                last_position: last.position,
                replayed: true,
            }),
            None => {
                return Err(Failure::Refused(StoreError::DuplicateEventId {
                    stream: part.stream.clone(),
                    event_id: part.ids[0],
                    reason: DuplicateReason::PartOfBatchStored,
                }));
            }
        }
    }
    Ok(results)
}
