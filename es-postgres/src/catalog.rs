//! The event catalog: distinct (type, version) pairs and samples by position, each by one scan of the events table
//! (an operator's check: appends keep no index for it, see migration 6).

use async_trait::async_trait;
use es_core::evolution::{EventCatalog, StoredEventType};
use es_core::{RecordedEvent, StoreError};

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::{bind_half, recorded_event};
use crate::schema::{EVENT_COLUMNS, SchemaName};

#[async_trait]
impl EventCatalog for PgEventStore {
    async fn stored_event_types(&self) -> Result<Vec<StoredEventType>, StoreError> {
        let rows: Vec<(String, i32, i64)> = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.catalog.event_types).fetch_all(&self.inner.pool)
        })
        .await
        .map_err(backend("stored_event_types"))?;
        Ok(rows
            .into_iter()
            .map(|(event_type, schema_version, count)| StoredEventType {
                event_type,
                schema_version: u32::try_from(schema_version).unwrap_or_default(),
                count: u64::try_from(count).unwrap_or_default(),
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
        let rows = crate::error::retrying(&self.inner.pool, || {
            sqlx::query(&self.inner.sql.catalog.sample_events)
                .bind(event_type)
                .bind(i32::try_from(schema_version).unwrap_or(i32::MAX))
                .bind(bind_half(oldest as u64))
                .bind(bind_half((limit - oldest) as u64))
                .fetch_all(&self.inner.pool)
        })
        .await
        .map_err(backend("sample_events"))?;
        let mut events = rows
            .iter()
            .map(|row| recorded_event(row, None))
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.position);
        events.dedup_by_key(|e| e.event_id);
        Ok(events)
    }
}

/// The event catalog statements.
#[derive(Clone, Debug)]
pub(crate) struct CatalogSql {
    pub(crate) event_types: String,
    pub(crate) sample_events: String,
}

impl CatalogSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            event_types: format!(
                "SELECT event_type, schema_version, count(*) FROM {s}.events \
             GROUP BY event_type, schema_version ORDER BY event_type, schema_version"
            ),
            sample_events: format!(
                "(SELECT {EVENT_COLUMNS} FROM {s}.events WHERE event_type = $1 AND schema_version = $2 \
              ORDER BY global_position LIMIT $3) \
             UNION ALL \
             (SELECT {EVENT_COLUMNS} FROM {s}.events WHERE event_type = $1 AND schema_version = $2 \
              ORDER BY global_position DESC LIMIT $4)"
            ),
        }
    }
}
