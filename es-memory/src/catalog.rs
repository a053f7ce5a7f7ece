//! The event catalog in memory.

use async_trait::async_trait;
use es_core::evolution::{EventCatalog, StoredEventType};
use es_core::{RecordedEvent, StoreError};

use crate::InMemoryEventStore;

#[async_trait]
impl EventCatalog for InMemoryEventStore {
    async fn stored_event_types(&self) -> Result<Vec<StoredEventType>, StoreError> {
        Ok(self.shared.log.read().event_types())
    }

    async fn sample_events(
        &self,
        event_type: &str,
        schema_version: u32,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .shared
            .log
            .read()
            .sample(event_type, schema_version, limit))
    }
}
