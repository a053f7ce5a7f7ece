//! Checkpoints in memory.

use async_trait::async_trait;
use es_core::projection::CheckpointStore;
use es_core::{Position, StoreError};

use crate::InMemoryEventStore;

#[async_trait]
impl CheckpointStore for InMemoryEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        Ok(self.shared.checkpoints.lock().get(name).copied())
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Position>,
        position: Position,
    ) -> Result<(), StoreError> {
        let mut checkpoints = self.shared.checkpoints.lock();
        let actual = checkpoints.get(name).copied();
        if actual != expected {
            return Err(StoreError::CheckpointConflict {
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        checkpoints.insert(name.to_owned(), position);
        Ok(())
    }

    async fn delete_checkpoint(&self, name: &str) -> Result<(), StoreError> {
        self.shared.checkpoints.lock().remove(name);
        Ok(())
    }
}
