//! Appends: one call of the schema's `append_many` function carries one or more appends, each to its own stream,
//! in one round trip and one transaction; every append gets its own outcome row.

use es_core::store::{AppendResult, DuplicateReason};
use es_core::{EventId, ExpectedVersion, NewEvent, StoreError, StreamId, Version};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;
use sqlx::{Executor, Row};
use uuid::Uuid;

use crate::error::{backend, sqlstate};
use crate::rows::position;

/// lock_timeout ran out.
pub(crate) const LOCK_NOT_AVAILABLE: &str = "55P03";

/// jsonb refuses `\u0000` in strings.
pub(crate) const UNSUPPORTED_UNICODE_ESCAPE: &str = "22P05";

/// The calls: `append_one` for an append alone, `append_many` for a group (both only try the streams' locks: an
/// append whose stream is held elsewhere answers 'busy'), `append_waiting` for a busy append, which waits for its
/// stream's lock within a bound.
#[derive(Clone, Debug)]
pub(crate) struct AppendSql {
    pub(crate) one: String,
    pub(crate) many: String,
    pub(crate) waiting: String,
    pub(crate) multi: String,
}

/// How a group's append ended: an outcome for its caller, or its stream held by another transaction.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done(Result<AppendResult, StoreError>),
    /// Nothing written: another transaction holds the stream; write it alone with [`call_waiting`].
    Busy,
}

impl Outcome {
    /// The one outcome of a call that carried a single append (`busy` when the stream is held).
    pub(crate) fn single(mut outcomes: Vec<Outcome>) -> Outcome {
        outcomes
            .pop()
            .unwrap_or_else(|| Outcome::Done(Err(unexpected("missing outcome row".to_owned()))))
    }
}

/// One append waiting to be written: the arguments of `EventStore::append`, already validated.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<NewEvent>,
}

/// The outcome of each request of a group, in order; `Err` when the call itself failed (then nothing of the group
/// was written, or, if the connection broke after the commit, all of it: a retry tells which).
pub(crate) async fn call(
    conn: &mut PgConnection,
    sql: &AppendSql,
    group: &[Request],
) -> Result<Vec<Outcome>, sqlx::Error> {
    call_with(conn, sql, group, None).await
}

/// One append alone, waiting at most `wait` for its stream's lock: past it, [`StoreError::StreamLocked`] as its
/// outcome.
pub(crate) async fn call_waiting(
    conn: &mut PgConnection,
    sql: &AppendSql,
    request: &Request,
    wait: std::time::Duration,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let started = std::time::Instant::now();
    match call_with(conn, sql, std::slice::from_ref(request), Some(wait)).await {
        Err(error) if sqlstate(&error).as_deref() == Some(LOCK_NOT_AVAILABLE) => {
            Ok(vec![Outcome::Done(Err(StoreError::StreamLocked {
                stream: request.stream.clone(),
                waited: started.elapsed(),
            }))])
        }
        other => other,
    }
}

async fn call_with(
    conn: &mut PgConnection,
    sql: &AppendSql,
    group: &[Request],
    wait: Option<std::time::Duration>,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let events = || group.iter().flat_map(|r| r.events.iter());
    let total = group.iter().map(|r| r.events.len()).sum();
    let streams: Vec<&str> = group.iter().map(|r| r.stream.as_str()).collect();
    let expected: Vec<Option<i64>> = group.iter().map(|r| expected_param(r.expected)).collect();
    let counts: Vec<i32> = group
        .iter()
        .map(|r| i32::try_from(r.events.len()).unwrap_or(i32::MAX))
        .collect();
    let mut ids = Vec::with_capacity(total);
    let mut types = Vec::with_capacity(total);
    let mut schema_versions = Vec::with_capacity(total);
    let mut payloads = Vec::with_capacity(total);
    let mut metadata = Vec::with_capacity(total);
    for event in events() {
        ids.push(event.event_id.as_uuid());
        types.push(event.event_type.as_ref());
        schema_versions.push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
        payloads.push(&event.payload);
        // Empty metadata travels as NULL (stored as `{}` by the function): no JSON to write or parse.
        metadata.push((!event.metadata.is_empty()).then_some(Json(&event.metadata)));
    }
    let query = match (group, wait) {
        ([one], Some(wait)) => sqlx::query(&sql.waiting)
            .bind(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
            .bind(one.stream.as_str())
            .bind(expected_param(one.expected)),
        ([one], None) => sqlx::query(&sql.one)
            .bind(one.stream.as_str())
            .bind(expected_param(one.expected)),
        (_, _) => sqlx::query(&sql.many)
            .bind(&streams)
            .bind(&expected)
            .bind(&counts),
    };
    let rows = conn
        .fetch_all(
            query
                .bind(&ids)
                .bind(&types)
                .bind(&schema_versions)
                .bind(&payloads)
                .bind(&metadata),
        )
        .await?;
    let mut outcomes: Vec<Option<Outcome>> = group.iter().map(|_| None).collect();
    for row in &rows {
        let index: i32 = row.try_get("append_index")?;
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| outcomes.get_mut(i).zip(group.get(i)));
        if let Some((slot, request)) = slot {
            *slot = Some(outcome(row, &request.stream, request.expected));
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Done(Err(unexpected("missing outcome row".to_owned()))))
        })
        .collect())
}

/// The error of a request that failed alone.
pub(crate) fn failed(error: sqlx::Error, request: &Request) -> StoreError {
    match sqlstate(&error).as_deref() {
        Some(UNSUPPORTED_UNICODE_ESCAPE) => nul_character(&request.stream, &request.events),
        _ => backend("append")(error),
    }
}

pub(crate) fn expected_param(expected: ExpectedVersion) -> Option<i64> {
    match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::StreamExists => Some(-1),
        ExpectedVersion::Exact(version) => Some(i64::try_from(version.get()).unwrap_or(i64::MAX)),
    }
}

fn outcome(row: &PgRow, stream: &StreamId, expected: ExpectedVersion) -> Outcome {
    match row.try_get::<&str, _>("outcome") {
        Ok("busy") => Outcome::Busy,
        _ => Outcome::Done(decided(row, stream, expected)),
    }
}

pub(crate) fn decided(
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
            "append_many returned an unexpected {what}; is the schema migrated by this version?"
        )
        .into(),
    }
}

/// PostgreSQL's jsonb cannot hold `\u0000`; name the first event that carries one.
pub(crate) fn nul_character(stream: &StreamId, events: &[NewEvent]) -> StoreError {
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
