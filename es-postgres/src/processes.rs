//! Process state and timers in the `processes` and `process_timers` tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::{DueTimer, ProcessRecord, ProcessStore, StoreError, Timer, TimerChanges};
use sqlx::types::Json;

use crate::PgEventStore;
use crate::error::backend;

#[async_trait]
impl ProcessStore for PgEventStore {
    async fn load_process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<ProcessRecord>, StoreError> {
        let row: Option<(i64, serde_json::Value, Json<Vec<String>>)> =
            sqlx::query_as(&self.inner.sql.load_process)
                .bind(process)
                .bind(instance)
                .fetch_optional(&self.inner.pool)
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
        let sql = &self.inner.sql;
        let mut tx = self
            .inner
            .pool
            .begin()
            .await
            .map_err(backend("save_process"))?;
        let version = i64::try_from(record.version).unwrap_or(i64::MAX);
        let saved = match expected {
            None => {
                sqlx::query(&sql.insert_process)
                    .bind(process)
                    .bind(instance)
                    .bind(version)
                    .bind(&record.state)
                    .bind(Json(&record.handled))
                    .execute(&mut *tx)
                    .await
            }
            Some(expected) => {
                sqlx::query(&sql.update_process)
                    .bind(process)
                    .bind(instance)
                    .bind(version)
                    .bind(&record.state)
                    .bind(Json(&record.handled))
                    .bind(i64::try_from(expected).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await
            }
        }
        .map_err(backend("save_process"))?;
        if saved.rows_affected() != 1 {
            return Err(StoreError::ProcessConflict {
                process: process.to_owned(),
                instance: instance.to_owned(),
            });
        }
        for name in &timers.remove {
            sqlx::query(&sql.delete_timer)
                .bind(process)
                .bind(instance)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(backend("save_process"))?;
        }
        for Timer { name, at } in &timers.set {
            sqlx::query(&sql.set_timer)
                .bind(process)
                .bind(instance)
                .bind(name)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(backend("save_process"))?;
        }
        tx.commit().await.map_err(backend("save_process"))
    }

    async fn due_timers(
        &self,
        process: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(&self.inner.sql.due_timers)
            .bind(process)
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
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
}
