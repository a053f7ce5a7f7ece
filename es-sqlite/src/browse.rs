//! What an operator browses that the store traits do not cover (the `es` CLI): the streams, and which migrations
//! the file has.

use async_trait::async_trait;
use es_core::control::{MigrationStatus, OperatorStore, StreamSummary};
use es_core::{Position, StoreError};

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{position, time};
use crate::store::MIGRATOR;

#[async_trait]
impl OperatorStore for SqliteEventStore {
    fn location(&self) -> String {
        format!("file `{}`", self.path().display())
    }

    /// Opening the file migrated it already.
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Up to `limit` streams after `after` (by id; `None`: from the first), of `category` (the part before the
    /// first `-`) or of all, in the order of their ids.
    ///
    /// ```
    /// use es_core::control::OperatorStore;
    /// use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
    /// use es_sqlite::SqliteEventStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("es-sqlite-doc-streams-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = SqliteEventStore::open(dir.join("shop.db")).await?;
    /// for id in ["order-1", "order-2", "stock-book"] {
    ///     let event = NewEvent::new("Happened", 1, serde_json::json!({}));
    ///     store.append(&StreamId::new(id)?, ExpectedVersion::NoStream, vec![event]).await?;
    /// }
    /// let orders = store.streams(Some("order"), None, 10).await?;
    /// assert_eq!(orders.iter().map(|s| s.stream_id.as_str()).collect::<Vec<_>>(), ["order-1", "order-2"]);
    /// let after_first = store.streams(None, Some("order-1"), 10).await?;
    /// assert_eq!(after_first.len(), 2);
    /// assert!(store.migration_status().await?.is_current());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        // Grouped along the (stream_id, stream_version) index, so the limit stops the scan.
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT stream_id, max(stream_version), min(created_at), max(created_at) FROM events \
             WHERE (?1 IS NULL OR stream_id > ?1) \
               AND (?2 IS NULL OR substr(stream_id, 1, length(?2) + 1) = ?2 || '-') \
             GROUP BY stream_id ORDER BY stream_id LIMIT ?3",
        )
        .bind(after)
        .bind(category)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.readers())
        .await
        .map_err(backend("list streams"))?;
        Ok(rows
            .into_iter()
            .map(|(stream_id, version, created, updated)| StreamSummary {
                stream_id,
                version: u64::try_from(version).unwrap_or_default(),
                created_at: time(created),
                updated_at: time(updated),
            })
            .collect())
    }

    /// The position after which the global stream holds its `n` newest events (what `tail` reads from);
    /// [`Position::START`] when it holds `n` or fewer.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn before_newest(&self, n: usize) -> Result<Position, StoreError> {
        let row: Option<i64> = sqlx::query_scalar(
            "SELECT global_position FROM events ORDER BY global_position DESC LIMIT 1 OFFSET ?1",
        )
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_optional(self.readers())
        .await
        .map_err(backend("find the newest events"))?;
        Ok(row.map_or(Position::START, position))
    }

    /// Which migrations the file has. [`SqliteEventStore::open`] applies this build's, so after it nothing is
    /// pending; a file migrated by a newer build lists what this one does not know.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let applied: Vec<(i64, String)> = sqlx::query_as(
            "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(self.readers())
        .await
        .map_err(backend("read the migrations"))?;
        Ok(MigrationStatus::of(
            MIGRATOR.iter().map(|m| (m.version, m.description.as_ref())),
            applied,
        ))
    }
}
