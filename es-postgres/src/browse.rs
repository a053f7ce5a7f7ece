//! What an operator browses that the store traits do not cover: the streams, and which migrations the schema has.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::control::{MigrationStatus, OperatorStore, StreamSummary};
use es_core::{Position, StoreError};

use crate::PgEventStore;
use crate::error::backend;
use crate::store::MIGRATOR;

#[async_trait]
impl OperatorStore for PgEventStore {
    fn location(&self) -> String {
        format!("schema `{}`", self.schema())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        PgEventStore::migrate(self)
            .await
            .map_err(|error| StoreError::Backend {
                operation: "migrate",
                source: error.into(),
            })
    }

    /// Up to `limit` streams after `after` (by id; `None`: from the first), of `category` (the part before the
    /// first `-`) or of all. Each stream costs an index probe or three; a category filter skips the streams of the
    /// other categories one probe each.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        let s = self.schema().quoted();
        // A skip scan over the primary key (stream_id, stream_version): one index probe per stream, stopped by the
        // limit, instead of grouping the whole events table.
        let sql = format!(
            "WITH RECURSIVE ids AS ( \
               (SELECT stream_id FROM {s}.events WHERE $2::text IS NULL OR stream_id > $2 \
                ORDER BY stream_id LIMIT 1) \
               UNION ALL \
               SELECT (SELECT e.stream_id FROM {s}.events e WHERE e.stream_id > ids.stream_id \
                       ORDER BY e.stream_id LIMIT 1) \
               FROM ids WHERE ids.stream_id IS NOT NULL) \
             SELECT i.stream_id, newest.stream_version, oldest.created_at, newest.created_at FROM ids i \
             CROSS JOIN LATERAL (SELECT stream_version, created_at FROM {s}.events \
               WHERE stream_id = i.stream_id ORDER BY stream_version DESC LIMIT 1) newest \
             CROSS JOIN LATERAL (SELECT created_at FROM {s}.events \
               WHERE stream_id = i.stream_id ORDER BY stream_version LIMIT 1) oldest \
             WHERE i.stream_id IS NOT NULL AND ($1::text IS NULL OR starts_with(i.stream_id, $1 || '-')) \
             LIMIT $3"
        );
        let rows: Vec<(String, i64, DateTime<Utc>, DateTime<Utc>)> =
            crate::error::retrying(self.pool(), || {
                sqlx::query_as(&sql)
                    .bind(category)
                    .bind(after)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.pool())
            })
            .await
            .map_err(backend("list streams"))?;
        Ok(rows
            .into_iter()
            .map(
                |(stream_id, version, created_at, updated_at)| StreamSummary {
                    stream_id,
                    version: u64::try_from(version).unwrap_or_default(),
                    created_at,
                    updated_at,
                },
            )
            .collect())
    }

    /// The position after which the global stream holds its `n` newest events (what `tail` reads from);
    /// [`Position::START`] when it holds `n` or fewer.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn before_newest(&self, n: usize) -> Result<Position, StoreError> {
        let sql = format!(
            "SELECT transaction_id::text::bigint, global_position FROM {}.events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id DESC, global_position DESC OFFSET $1 LIMIT 1",
            self.schema().quoted()
        );
        let row: Option<(i64, i64)> = crate::error::retrying(self.pool(), || {
            sqlx::query_as(&sql)
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .fetch_optional(self.pool())
        })
        .await
        .map_err(backend("find the newest events"))?;
        Ok(row.map_or(Position::START, |(commit, prepare)| {
            Position::new(
                u64::try_from(commit).unwrap_or_default(),
                u64::try_from(prepare).unwrap_or_default(),
            )
        }))
    }

    /// Which migrations the schema has (none when it does not exist yet).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let schema = self.schema().as_str();
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM pg_tables WHERE schemaname = $1 AND tablename = '_sqlx_migrations')",
        )
        .bind(schema)
        .fetch_one(self.pool())
        .await
        .map_err(backend("read the migrations"))?;
        let applied: Vec<(i64, String)> = match exists {
            false => Vec::new(),
            true => sqlx::query_as(&format!(
                "SELECT version, description FROM {}._sqlx_migrations WHERE success ORDER BY version",
                self.schema().quoted()
            ))
            .fetch_all(self.pool())
            .await
            .map_err(backend("read the migrations"))?,
        };
        Ok(MigrationStatus::of(
            MIGRATOR.iter().map(|m| (m.version, m.description.as_ref())),
            applied,
        ))
    }
}
