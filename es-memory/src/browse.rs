//! [`OperatorStore`] in memory: nothing to migrate, the streams and the newest events from the log.

use async_trait::async_trait;
use es_core::control::{MigrationStatus, OperatorStore, StreamSummary};
use es_core::{Position, StoreError};

use crate::InMemoryEventStore;

#[async_trait]
impl OperatorStore for InMemoryEventStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    /// Memory has no tables to migrate.
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// No migrations: always current.
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        Ok(MigrationStatus::of([], Vec::new()))
    }

    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        Ok(self.shared.log.read().streams(category, after, limit))
    }

    async fn before_newest(&self, n: usize) -> Result<Position, StoreError> {
        Ok(self.shared.log.read().before_newest(n))
    }
}
