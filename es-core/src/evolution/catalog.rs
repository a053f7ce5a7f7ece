//! What kinds of events a store holds: the input of the pre-deploy schema check.

use async_trait::async_trait;

use crate::store::RecordedEvent;
use crate::store::error::StoreError;

/// One (event type, schema version) pair present in a store, with how many events carry it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoredEventType {
    /// The stored type name.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// How many events have this pair.
    pub count: u64,
}

/// Lists the event kinds in a store without reading it event by event, and samples events of one kind.
///
/// ```
/// use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use es_core::evolution::EventCatalog;
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("light-1")?;
/// let on = || NewEvent::new("SwitchedOn", 1, serde_json::json!({}));
/// store.append(&stream, ExpectedVersion::Any, vec![on(), on()]).await?;
/// let kinds = store.stored_event_types().await?;
/// assert_eq!((kinds[0].event_type.as_str(), kinds[0].schema_version, kinds[0].count), ("SwitchedOn", 1, 2));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait EventCatalog: Send + Sync {
    /// Every distinct (type, schema version) pair with its count, sorted by type then version.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn stored_event_types(&self) -> Result<Vec<StoredEventType>, StoreError>;

    /// Up to `limit` events of one pair, the oldest and the newest ones first: a sample to try decoding.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn sample_events(
        &self,
        event_type: &str,
        schema_version: u32,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}
