//! Appends: one call of the schema's `append_events` function per batch.

use es_core::{
    AppendResult, DuplicateReason, EventId, ExpectedVersion, Metadata, NewEvent, StoreError,
    StreamId, Version, validate_append,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::{backend, sqlstate};
use crate::rows::position;
use crate::store::Inner;

/// Unique violation: with the per-stream lock, only two writers racing the same event id into different streams
/// get here; the retry then sees the committed row and classifies it.
const UNIQUE_VIOLATION: &str = "23505";
/// jsonb refuses `\u0000` in strings.
const UNSUPPORTED_UNICODE_ESCAPE: &str = "22P05";

pub(crate) async fn append(
    inner: &Inner,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    validate_append(stream, events)?;
    let expected_param = match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::StreamExists => Some(-1),
        ExpectedVersion::Exact(version) => Some(i64::try_from(version.get()).unwrap_or(i64::MAX)),
    };
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id.as_uuid()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_ref()).collect();
    let schema_versions: Vec<i32> = events
        .iter()
        .map(|e| i32::try_from(e.schema_version).unwrap_or(i32::MAX))
        .collect();
    let payloads: Vec<&serde_json::Value> = events.iter().map(|e| &e.payload).collect();
    let metadata: Vec<Json<&Metadata>> = events.iter().map(|e| Json(&e.metadata)).collect();

    let mut attempt = 0;
    let row = loop {
        attempt += 1;
        let result = sqlx::query(&inner.sql.append)
            .bind(stream.as_str())
            .bind(expected_param)
            .bind(&ids)
            .bind(&types)
            .bind(&schema_versions)
            .bind(&payloads)
            .bind(&metadata)
            .fetch_one(&inner.pool)
            .await;
        match result {
            Ok(row) => break row,
            Err(error) => match sqlstate(&error).as_deref() {
                Some(UNIQUE_VIOLATION) if attempt == 1 => continue,
                Some(UNSUPPORTED_UNICODE_ESCAPE) => return Err(nul_character(stream, events)),
                _ => return Err(backend("append")(error)),
            },
        }
    };
    outcome(&row, stream, expected)
}

fn outcome(
    row: &PgRow,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Result<AppendResult, StoreError> {
    let get_i64 = |column: &str| -> Result<i64, StoreError> {
        row.try_get::<i64, _>(column).map_err(backend("append"))
    };
    let kind: String = row.try_get("outcome").map_err(backend("append"))?;
    match kind.as_str() {
        "appended" | "replayed" => Ok(AppendResult {
            first_version: Version::new(
                u64::try_from(get_i64("first_version")?).unwrap_or_default(),
            ),
            last_version: Version::new(u64::try_from(get_i64("last_version")?).unwrap_or_default()),
            first_position: position(get_i64("first_tx")?, get_i64("first_position")?),
            last_position: position(get_i64("last_tx")?, get_i64("last_position")?),
            replayed: kind == "replayed",
        }),
        "conflict" => {
            let actual: Option<i64> = row.try_get("actual_version").map_err(backend("append"))?;
            Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: actual.and_then(|v| u64::try_from(v).ok()).map(Version::new),
            })
        }
        "duplicate" => {
            let event_id: Uuid = row.try_get("dup_event_id").map_err(backend("append"))?;
            let reason: String = row.try_get("dup_reason").map_err(backend("append"))?;
            let found_stream: Option<String> =
                row.try_get("dup_stream").map_err(backend("append"))?;
            let found_version: Option<i64> =
                row.try_get("dup_version").map_err(backend("append"))?;
            let reason = match (reason.as_str(), found_stream) {
                ("stored_in_other_stream", Some(other)) => DuplicateReason::StoredInOtherStream(
                    StreamId::new(&other)
                        .map_err(|e| unexpected(format!("stored stream id: {e}")))?,
                ),
                ("stored_at_other_version", _) => {
                    DuplicateReason::StoredAtOtherVersion(Version::new(
                        found_version
                            .and_then(|v| u64::try_from(v).ok())
                            .unwrap_or_default(),
                    ))
                }
                ("part_of_batch_stored", _) => DuplicateReason::PartOfBatchStored,
                (other, _) => return Err(unexpected(format!("duplicate reason `{other}`"))),
            };
            Err(StoreError::DuplicateEventId {
                stream: stream.clone(),
                event_id: EventId::from_uuid(event_id),
                reason,
            })
        }
        other => Err(unexpected(format!("outcome `{other}`"))),
    }
}

fn unexpected(what: String) -> StoreError {
    StoreError::Backend {
        operation: "append",
        source: format!(
            "append_events returned an unexpected {what}; is the schema migrated by this version?"
        )
        .into(),
    }
}

/// PostgreSQL's jsonb cannot hold `\u0000`; name the first event that carries one.
fn nul_character(stream: &StreamId, events: &[NewEvent]) -> StoreError {
    fn has_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
            }
            _ => false,
        }
    }
    let culprit = events
        .iter()
        .find(|e| {
            has_nul(&e.payload) || serde_json::to_value(&e.metadata).is_ok_and(|m| has_nul(&m))
        })
        .or(events.first());
    StoreError::InvalidEvent {
        stream: stream.clone(),
        event_id: culprit.map(|e| e.event_id).unwrap_or_default(),
        event_type: culprit
            .map(|e| e.event_type.to_string())
            .unwrap_or_default(),
        reason: "PostgreSQL jsonb cannot store the character U+0000 in a string".to_owned(),
    }
}
