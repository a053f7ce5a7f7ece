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
                sqlx::query_as(&self.inner.sql.load_process)
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
            None => &self.inner.sql.insert_process,
            Some(_) => &self.inner.sql.update_process,
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
                sqlx::query_as(&self.inner.sql.due_timers)
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
        let rows: Vec<InstanceRow> = sqlx::query_as(&self.inner.sql.list_processes)
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
