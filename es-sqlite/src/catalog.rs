//! The event catalog: the stored (type, schema version) pairs, and samples of each.

use async_trait::async_trait;
use es_core::evolution::{EventCatalog, StoredEventType};
use es_core::{RecordedEvent, StoreError};

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{EVENT_COLUMNS, EventRow, recorded};

#[async_trait]
impl EventCatalog for SqliteEventStore {
    async fn stored_event_types(&self) -> Result<Vec<StoredEventType>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT event_type, schema_version, count(*) FROM events GROUP BY event_type, schema_version \
             ORDER BY event_type, schema_version",
        )
        .fetch_all(self.readers())
        .await
        .map_err(backend("stored_event_types"))?;
        Ok(rows
            .into_iter()
            .map(|(event_type, schema_version, count)| StoredEventType {
                event_type,
                schema_version: u32::try_from(schema_version).unwrap_or(0),
                count: u64::try_from(count).unwrap_or(0),
            })
            .collect())
    }

    async fn sample_events(
        &self,
        event_type: &str,
        schema_version: u32,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let oldest = limit.div_ceil(2);
        let newest = limit - oldest;
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT * FROM ( \
               SELECT * FROM (SELECT {EVENT_COLUMNS} FROM events WHERE event_type = ?1 AND schema_version = ?2 \
                 ORDER BY global_position LIMIT ?3) \
               UNION \
               SELECT * FROM (SELECT {EVENT_COLUMNS} FROM events WHERE event_type = ?1 AND schema_version = ?2 \
                 ORDER BY global_position DESC LIMIT ?4)) \
             ORDER BY global_position"
        ))
        .bind(event_type)
        .bind(i64::from(schema_version))
        .bind(i64::try_from(oldest).unwrap_or(i64::MAX))
        .bind(i64::try_from(newest).unwrap_or(i64::MAX))
        .fetch_all(self.readers())
        .await
        .map_err(backend("sample_events"))?;
        rows.into_iter().map(recorded).collect()
    }
}
