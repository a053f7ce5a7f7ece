//! Dead letters: events a projection gave up on, parked for inspection and redrive.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::error::StoreError;
use crate::store::{EventId, Position, Version};

/// An event a projection could not handle after every retry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The projection.
    pub projection: String,
    /// The event's global position.
    pub position: Position,
    /// The event's id.
    pub event_id: EventId,
    /// The event's stream, as stored (a corrupt event's may not be a valid [`StreamId`](crate::StreamId)).
    pub stream_id: String,
    /// The event's version in it.
    pub version: Version,
    /// The event's stored type.
    pub event_type: String,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was parked (or last failed a redrive).
    pub failed_at: DateTime<Utc>,
}

/// Stores dead letters per projection.
///
/// ```
/// use es_core::projection::DeadLetterStore;
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// assert!(store.dead_letters("balances").await?.is_empty());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Parks `letter`; parking the same event again for the same projection replaces the earlier letter.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn park(&self, letter: DeadLetter) -> Result<(), StoreError>;

    /// The dead letters of `projection`, in position order.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError>;

    /// Removes one (after a successful redrive). Removing a missing one is not an error.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn remove_dead_letter(
        &self,
        projection: &str,
        event_id: EventId,
    ) -> Result<(), StoreError>;
}
