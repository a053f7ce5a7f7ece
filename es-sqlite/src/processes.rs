//! Process state and timers in the `processes` and `process_timers` tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::StoreError;
use es_core::process::{
    DueTimer, ProcessInstance, ProcessRecord, ProcessStore, Timer, TimerChanges,
};

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, time};
use crate::transaction::Failure;

fn record(version: i64, state: &str, handled: &str) -> Result<ProcessRecord, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Backend {
        operation: "load_process",
        source: Box::new(e),
    };
    Ok(ProcessRecord {
        state: serde_json::from_str(state).map_err(corrupt)?,
        version: u64::try_from(version).unwrap_or(0),
        handled: serde_json::from_str(handled).map_err(corrupt)?,
    })
}

#[async_trait]
impl ProcessStore for SqliteEventStore {
    async fn load_process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<ProcessRecord>, StoreError> {
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT version, state, handled FROM processes WHERE process = ?1 AND instance = ?2",
        )
        .bind(process)
        .bind(instance)
        .fetch_optional(self.readers())
        .await
        .map_err(backend("load_process"))?;
        row.map(|(v, state, handled)| record(v, &state, &handled))
            .transpose()
    }

    async fn save_process(
        &self,
        process: &str,
        instance: &str,
        expected: Option<u64>,
        record: ProcessRecord,
        timers: TimerChanges,
    ) -> Result<(), StoreError> {
        let encode = |e: serde_json::Error| StoreError::Backend {
            operation: "save_process",
            source: Box::new(e),
        };
        let state = serde_json::to_string(&record.state).map_err(encode)?;
        let handled = serde_json::to_string(&record.handled).map_err(encode)?;
        let version = i64::try_from(record.version).unwrap_or(i64::MAX);
        self.in_write("save_process", async |conn| {
            let (state, handled, timers) = (&state, &handled, &timers);
            let stored: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM processes WHERE process = ?1 AND instance = ?2",
            )
            .bind(process)
            .bind(instance)
            .fetch_optional(&mut *conn)
            .await?;
            if stored.map(|v| u64::try_from(v).unwrap_or(0)) != expected {
                return Err(Failure::Refused(StoreError::ProcessConflict {
                    process: process.to_owned(),
                    instance: instance.to_owned(),
                }));
            }
            sqlx::query(
                    "INSERT INTO processes (process, instance, version, state, handled, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (process, instance) DO UPDATE SET \
                     version = excluded.version, state = excluded.state, handled = excluded.handled, \
                     updated_at = excluded.updated_at",
                )
                .bind(process)
                .bind(instance)
                .bind(version)
                .bind(state)
                .bind(handled)
                .bind(micros(Utc::now()))
                .execute(&mut *conn)
                .await?;
            for name in &timers.remove {
                sqlx::query(
                    "DELETE FROM process_timers WHERE process = ?1 AND instance = ?2 AND name = ?3",
                )
                .bind(process)
                .bind(instance)
                .bind(name)
                .execute(&mut *conn)
                .await?;
            }
            for timer in &timers.set {
                sqlx::query(
                        "INSERT INTO process_timers (process, instance, name, due_at) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (process, instance, name) DO UPDATE SET due_at = excluded.due_at",
                    )
                    .bind(process)
                    .bind(instance)
                    .bind(&timer.name)
                    .bind(micros(timer.at))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }).await
    }

    async fn due_timers(
        &self,
        process: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT instance, name, due_at FROM process_timers WHERE process = ?1 AND due_at <= ?2 \
             ORDER BY due_at LIMIT ?3",
        )
        .bind(process)
        .bind(micros(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.readers())
        .await
        .map_err(backend("due_timers"))?;
        Ok(rows
            .into_iter()
            .map(|(instance, name, at)| DueTimer {
                instance,
                timer: Timer { name, at: time(at) },
            })
            .collect())
    }

    async fn list_processes(
        &self,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProcessInstance>, StoreError> {
        let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
            "SELECT process, instance, version, state, handled FROM processes \
             WHERE ?1 IS NULL OR process = ?1 ORDER BY process, instance LIMIT ?2",
        )
        .bind(process)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.readers())
        .await
        .map_err(backend("list_processes"))?;
        let mut instances = Vec::with_capacity(rows.len());
        for (process, instance, version, state, handled) in rows {
            let timers: Vec<(String, i64)> = sqlx::query_as(
                "SELECT name, due_at FROM process_timers WHERE process = ?1 AND instance = ?2 ORDER BY due_at",
            )
            .bind(&process)
            .bind(&instance)
            .fetch_all(self.readers())
            .await
            .map_err(backend("list_processes"))?;
            instances.push(ProcessInstance {
                record: record(version, &state, &handled)?,
                timers: timers
                    .into_iter()
                    .map(|(name, at)| Timer { name, at: time(at) })
                    .collect(),
                process,
                instance,
            });
        }
        Ok(instances)
    }
}
