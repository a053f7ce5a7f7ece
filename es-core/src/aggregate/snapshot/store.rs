//! Snapshots: an aggregate's folded state at a stream version, stored to shorten later loads.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::error::StoreError;
use crate::store::{StreamId, Version};

/// A folded state of one stream at one version. The events stay the source of truth: a snapshot is only a
/// shortcut, and one whose `schema_version` is not the code's current one is ignored by loaders.
///
/// ```
/// use es_core::{StreamId, Version};
/// use es_core::aggregate::Snapshot;
///
/// let snapshot = Snapshot {
///     stream_id: StreamId::new("account-1")?,
///     snapshot_type: "account".into(),
///     schema_version: 1,
///     version: Version::new(100),
///     state: serde_json::json!({ "balance": 42 }),
/// };
/// assert_eq!(snapshot.version.get(), 100);
/// # Ok::<(), es_core::store::StreamIdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream it summarises.
    pub stream_id: StreamId,
    /// What kind of state it holds (one stream can have snapshots of several kinds).
    pub snapshot_type: String,
    /// The schema version of `state`; bump it when the state's shape changes to make old snapshots ignored.
    pub schema_version: u32,
    /// The stream version of the last event folded into it.
    pub version: Version,
    /// The state as JSON.
    pub state: serde_json::Value,
}

/// Stores the newest snapshot per (stream, snapshot type).
///
/// ```
/// use es_core::{StreamId, Version};
/// use es_core::aggregate::{Snapshot, SnapshotStore};
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("account-1")?;
/// let at = |v| Snapshot { stream_id: stream.clone(), snapshot_type: "account".into(), schema_version: 1,
///                         version: Version::new(v), state: serde_json::json!({ "v": v }) };
/// store.save_snapshot(at(200)).await?;
/// store.save_snapshot(at(100)).await?; // older: ignored
/// let newest = store.load_snapshot(&stream, "account").await?;
/// assert_eq!(newest.map(|s| s.version.get()), Some(200));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Saves `snapshot` unless the stored one of the same stream and type has the same schema version and a
    /// higher or equal stream version (so a slow writer never replaces a newer snapshot with an older one).
    ///
    /// # Errors
    /// [`StoreError::Backend`]; [`StoreError::InvalidSnapshot`] for a schema version of 0 or above `i32::MAX`
    /// or an empty snapshot type.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// The stored snapshot of `stream` and `snapshot_type`, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn load_snapshot(
        &self,
        stream: &StreamId,
        snapshot_type: &str,
    ) -> Result<Option<Snapshot>, StoreError>;
}

/// Checks what every backend refuses in a snapshot. For backend implementors.
///
/// # Errors
/// [`StoreError::InvalidSnapshot`].
pub fn validate_snapshot(snapshot: &Snapshot) -> Result<(), StoreError> {
    let reason = if snapshot.snapshot_type.is_empty() {
        "the snapshot type is empty".to_owned()
    } else if snapshot.schema_version == 0 || i32::try_from(snapshot.schema_version).is_err() {
        format!(
            "schema version {} is outside 1..={}",
            snapshot.schema_version,
            i32::MAX
        )
    } else if snapshot.version == Version::INITIAL {
        "a snapshot must follow at least one event (version 0)".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidSnapshot {
        stream: snapshot.stream_id.clone(),
        snapshot_type: snapshot.snapshot_type.clone(),
        reason,
    })
}
