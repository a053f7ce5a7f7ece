//! Multi-stream appends: one call of the schema's `append_multi` function, which locks every stream named (in one
//! order), checks every expectation and writes every batch in one transaction, or writes nothing.

use std::time::Instant;

use es_core::StoreError;
use es_core::backend::validate_multi;
use es_core::store::{
    AppendCondition, AppendResult, DuplicateReason, MultiAppend, MultiParts, StreamConflict,
};
use sqlx::Row;
use sqlx::types::Json;

use crate::PgEventStore;
use crate::append::{
    LOCK_NOT_AVAILABLE, UNSUPPORTED_UNICODE_ESCAPE, decided, expected_param, nul_character,
};
use crate::error::{backend, sqlstate};
use crate::rows::{bind_half, position};

pub(crate) async fn append_multi(
    store: &PgEventStore,
    append: MultiAppend,
) -> Result<Vec<AppendResult>, StoreError> {
    validate_multi(&append)?;
    for part in append.appends() {
        store.inner.limits.check(&part.stream, &part.events)?;
    }
    let MultiParts {
        appends: parts,
        checks,
        condition,
    } = append.into_parts();
    let events = || parts.iter().flat_map(|p| p.events.iter());
    let streams: Vec<&str> = parts.iter().map(|p| p.stream.as_str()).collect();
    let expected: Vec<Option<i64>> = parts.iter().map(|p| expected_param(p.expected)).collect();
    let counts: Vec<i32> = parts
        .iter()
        .map(|p| i32::try_from(p.events.len()).unwrap_or(i32::MAX))
        .collect();
    let ids: Vec<uuid::Uuid> = events().map(|e| e.event_id.as_uuid()).collect();
    let types: Vec<&str> = events().map(|e| e.event_type.as_ref()).collect();
    let schema_versions: Vec<i32> = events()
        .map(|e| i32::try_from(e.schema_version).unwrap_or(i32::MAX))
        .collect();
    let payloads: Vec<&serde_json::Value> = events().map(|e| &e.payload).collect();
    let metadata: Vec<Option<Json<&es_core::Metadata>>> = events()
        .map(|e| (!e.metadata.is_empty()).then_some(Json(&e.metadata)))
        .collect();
    let tags: Vec<Option<Json<&Vec<String>>>> = events()
        .map(|e| (!e.tags.is_empty()).then_some(Json(&e.tags)))
        .collect();
    let condition = condition.as_ref().map(condition_json);
    let check_streams: Vec<&str> = checks.iter().map(|(s, _)| s.as_str()).collect();
    let check_expected: Vec<Option<i64>> = checks.iter().map(|(_, e)| expected_param(*e)).collect();
    let wait = store.inner.committer.lock_wait();
    let started = Instant::now();
    let rows = sqlx::query(&store.inner.sql.append.multi)
        .bind(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
        .bind(&streams)
        .bind(&expected)
        .bind(&counts)
        .bind(&ids)
        .bind(&types)
        .bind(&schema_versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&check_streams)
        .bind(&check_expected)
        .bind(&tags)
        .bind(&condition)
        .fetch_all(store.pool())
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            return Err(match sqlstate(&error).as_deref() {
                Some(LOCK_NOT_AVAILABLE) => StoreError::StreamLocked {
                    stream: parts[0].stream.clone(),
                    waited: started.elapsed(),
                },
                Some(UNSUPPORTED_UNICODE_ESCAPE) => {
                    let events: Vec<es_core::NewEvent> = events().cloned().collect();
                    nul_character(&parts[0].stream, &events)
                }
                _ => backend("append_multi")(error),
            });
        }
    };
    let mut results: Vec<Option<AppendResult>> = parts.iter().map(|_| None).collect();
    let mut conflicts = Vec::new();
    for row in &rows {
        let outcome: &str = row.try_get("outcome").map_err(backend("append_multi"))?;
        if outcome == "condition" {
            return Err(condition_failed(row, condition_after(&condition)));
        }
        let index: i32 = row
            .try_get("append_index")
            .map_err(backend("append_multi"))?;
        let index = usize::try_from(index).unwrap_or(0).saturating_sub(1);
        let (stream, expected) = match (
            parts.get(index),
            checks.get(index.wrapping_sub(parts.len())),
        ) {
            (Some(part), _) => (&part.stream, part.expected),
            (None, Some((stream, expected))) => (stream, *expected),
            (None, None) => return Err(unexpected(format!("append index {index}"))),
        };
        match decided(row, stream, expected) {
            Ok(result) => {
                if let Some(slot) = results.get_mut(index) {
                    *slot = Some(result);
                }
            }
            Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            }) => conflicts.push(StreamConflict {
                stream,
                expected,
                actual,
            }),
            Err(other) => return Err(other),
        }
    }
    if !conflicts.is_empty() {
        // Stored ids in one part and not in another: not a retry of this append.
        if let Some(part) = parts
            .iter()
            .zip(&results)
            .find(|(_, r)| r.is_some())
            .map(|(p, _)| p)
        {
            return Err(StoreError::DuplicateEventId {
                stream: part.stream.clone(),
                event_id: part.events[0].event_id,
                reason: DuplicateReason::PartOfBatchStored,
            });
        }
        return Err(StoreError::Conflicts { conflicts });
    }
    let results = results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| unexpected("missing outcome row".to_owned()))?;
    if results.iter().any(|r| !r.replayed) {
        store.inner.live.committed();
    }
    Ok(results)
}

/// A condition as the function reads it: `{"after": [commit, prepare] | null, "items": [{"types": [..], "tags": [..]}]}`.
fn condition_json(condition: &AppendCondition) -> Json<serde_json::Value> {
    let items: Vec<serde_json::Value> = condition
        .query
        .items()
        .iter()
        .map(
            |item| serde_json::json!({ "types": item.event_types(), "tags": item.required_tags() }),
        )
        .collect();
    let after = condition
        .after
        .map(|p| serde_json::json!([bind_half(p.commit), bind_half(p.prepare)]));
    Json(serde_json::json!({ "after": after, "items": items }))
}

fn condition_after(condition: &Option<Json<serde_json::Value>>) -> Option<es_core::Position> {
    let after = condition.as_ref()?.0.get("after")?.as_array()?.clone();
    let half = |i: usize| after.get(i).and_then(serde_json::Value::as_i64);
    Some(position(half(0)?, half(1)?))
}

/// The error of a failed condition, naming the first matching event (not its payload).
fn condition_failed(row: &sqlx::postgres::PgRow, after: Option<es_core::Position>) -> StoreError {
    let read = || -> Result<StoreError, sqlx::Error> {
        let stream: String = row.try_get("dup_stream")?;
        Ok(StoreError::ConditionFailed {
            after,
            position: position(row.try_get("first_tx")?, row.try_get("first_position")?),
            stream: es_core::StreamId::new(&stream)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            event_type: row.try_get("dup_reason")?,
        })
    };
    read().unwrap_or_else(backend("append_multi"))
}

fn unexpected(what: String) -> StoreError {
    StoreError::Backend {
        operation: "append_multi",
        source: format!(
            "append_multi returned an unexpected {what}; is the schema migrated by this version?"
        )
        .into(),
    }
}
