//! Process state and timers in the `processes` and `process_timers` tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::StoreError;
use es_core::process::{
    DueTimer, ProcessInstance, ProcessRecord, ProcessStore, Timer, TimerChanges,
};
use sqlx::types::Json;

use crate::PgEventStore;
use crate::error::backend;
use crate::schema::SchemaName;

/// A timer as `list_processes` aggregates it.
#[derive(serde::Deserialize)]
struct TimerRow {
    name: String,
    at: DateTime<Utc>,
}

type InstanceRow = (
    String,
    String,
    i64,
    serde_json::Value,
    Json<Vec<String>>,
    Json<Vec<TimerRow>>,
);

#[async_trait]
impl ProcessStore for PgEventStore {
    async fn load_process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<ProcessRecord>, StoreError> {
        let row: Option<(i64, serde_json::Value, Json<Vec<String>>)> =
            crate::error::retrying(&self.inner.pool, || {
                sqlx::query_as(&self.inner.sql.processes.load)
                    .bind(process)
                    .bind(instance)
                    .fetch_optional(&self.inner.pool)
            })
            .await
            .map_err(backend("load_process"))?;
        Ok(row.map(|(version, state, Json(handled))| ProcessRecord {
            state,
            version: u64::try_from(version).unwrap_or_default(),
            handled,
        }))
    }

    async fn save_process(
        &self,
        process: &str,
        instance: &str,
        expected: Option<u64>,
        record: ProcessRecord,
        timers: TimerChanges,
    ) -> Result<(), StoreError> {
        let sql = match expected {
            None => &self.inner.sql.processes.insert,
            Some(_) => &self.inner.sql.processes.update,
        };
        // A timer both removed and set is set: setting replaces it.
        let removed: Vec<&str> = timers
            .remove
            .iter()
            .filter(|name| !timers.set.iter().any(|t| &t.name == *name))
            .map(String::as_str)
            .collect();
        let names: Vec<&str> = timers.set.iter().map(|t| t.name.as_str()).collect();
        let due: Vec<DateTime<Utc>> = timers.set.iter().map(|t| t.at).collect();
        let saved: i64 = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_scalar(sql)
                .bind(process)
                .bind(instance)
                .bind(i64::try_from(record.version).unwrap_or(i64::MAX))
                .bind(&record.state)
                .bind(Json(&record.handled))
                .bind(expected.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
                .bind(&removed)
                .bind(&names)
                .bind(&due)
                .fetch_one(&self.inner.pool)
        })
        .await
        .map_err(backend("save_process"))?;
        if saved != 1 {
            return Err(StoreError::ProcessConflict {
                process: process.to_owned(),
                instance: instance.to_owned(),
            });
        }
        Ok(())
    }

    async fn due_timers(
        &self,
        process: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>)> =
            crate::error::retrying(&self.inner.pool, || {
                sqlx::query_as(&self.inner.sql.processes.due_timers)
                    .bind(process)
                    .bind(now)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.inner.pool)
            })
            .await
            .map_err(backend("due_timers"))?;
        Ok(rows
            .into_iter()
            .map(|(instance, name, at)| DueTimer {
                instance,
                timer: Timer { name, at },
            })
            .collect())
    }

    async fn list_processes(
        &self,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProcessInstance>, StoreError> {
        let rows: Vec<InstanceRow> = sqlx::query_as(&self.inner.sql.processes.list)
            .bind(process)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(backend("list_processes"))?;
        Ok(rows
            .into_iter()
            .map(
                |(process, instance, version, state, Json(handled), Json(timers))| {
                    ProcessInstance {
                        process,
                        instance,
                        record: ProcessRecord {
                            state,
                            version: u64::try_from(version).unwrap_or_default(),
                            handled,
                        },
                        timers: timers
                            .into_iter()
                            .map(|t| Timer {
                                name: t.name,
                                at: t.at,
                            })
                            .collect(),
                    }
                },
            )
            .collect())
    }
}

/// The process manager statements.
#[derive(Clone, Debug)]
pub(crate) struct ProcessSql {
    pub(crate) load: String,
    pub(crate) insert: String,
    pub(crate) update: String,
    pub(crate) due_timers: String,
    pub(crate) list: String,
}

/// A process save in one statement (one round trip, atomic): `saved` writes the state (the insert or the
/// compare-and-set update), and only if it did, timers named in `$7` are removed and those in `$8`/`$9` set.
/// Returns how many state rows were written (0: another save came first).
fn save_process(s: &str, saved: &str) -> String {
    let saved = saved.replace("{s}", s);
    format!(
        "WITH saved AS ({saved}), \
         removed AS (DELETE FROM {s}.process_timers WHERE process = $1 AND instance = $2 \
             AND name = ANY ($7::text[]) AND EXISTS (SELECT 1 FROM saved)), \
         set AS (INSERT INTO {s}.process_timers (process, instance, name, due_at) \
             SELECT $1, $2, t.name, t.due_at FROM unnest($8::text[], $9::timestamptz[]) AS t(name, due_at) \
             WHERE EXISTS (SELECT 1 FROM saved) \
             ON CONFLICT (process, instance, name) DO UPDATE SET due_at = EXCLUDED.due_at) \
         SELECT count(*) FROM saved"
    )
}

impl ProcessSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            load: format!(
                "SELECT version, state, handled FROM {s}.processes WHERE process = $1 AND instance = $2"
            ),
            insert: save_process(
                &s,
                "INSERT INTO {s}.processes (process, instance, version, state, handled) \
             SELECT $1, $2, $3, $4, $5 WHERE $6::bigint IS NULL \
             ON CONFLICT (process, instance) DO NOTHING RETURNING 1",
            ),
            update: save_process(
                &s,
                "UPDATE {s}.processes SET version = $3, state = $4, handled = $5, updated_at = now() \
             WHERE process = $1 AND instance = $2 AND version = $6 RETURNING 1",
            ),
            due_timers: format!(
                "SELECT instance, name, due_at FROM {s}.process_timers WHERE process = $1 AND due_at <= $2 \
             ORDER BY due_at LIMIT $3"
            ),
            list: format!(
                "SELECT p.process, p.instance, p.version, p.state, p.handled, \
               COALESCE((SELECT jsonb_agg(jsonb_build_object('name', t.name, 'at', t.due_at) ORDER BY t.due_at) \
                 FROM {s}.process_timers t WHERE t.process = p.process AND t.instance = p.instance), '[]') \
             FROM {s}.processes p WHERE $1::text IS NULL OR p.process = $1 \
             ORDER BY p.process, p.instance LIMIT $2"
            ),
        }
    }
}
