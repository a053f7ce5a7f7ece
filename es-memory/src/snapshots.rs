//! Snapshots in memory.

use async_trait::async_trait;
use es_core::aggregate::{Snapshot, SnapshotStore};
use es_core::backend::validate_snapshot;
use es_core::{StoreError, StreamId};

use crate::InMemoryEventStore;

#[async_trait]
impl SnapshotStore for InMemoryEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_snapshot(&snapshot)?;
        let key = (snapshot.stream_id.clone(), snapshot.snapshot_type.clone());
        let mut snapshots = self.shared.snapshots.write();
        let keep_stored = snapshots.get(&key).is_some_and(|stored| {
            stored.schema_version == snapshot.schema_version && stored.version >= snapshot.version
        });
        if !keep_stored {
            snapshots.insert(key, snapshot);
        }
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        snapshot_type: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let key = (stream.clone(), snapshot_type.to_owned());
        Ok(self.shared.snapshots.read().get(&key).cloned())
    }
}
