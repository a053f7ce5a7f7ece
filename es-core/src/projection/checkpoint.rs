//! Checkpoints: how far a named reader of the global stream (a projection, a relay) has got.

use async_trait::async_trait;

use crate::store::Position;
use crate::store::error::StoreError;

/// Stores one position per reader name, moved by compare-and-set so that two instances of one reader cannot both
/// advance it.
///
/// ```
/// use es_core::{Position, StoreError};
/// use es_core::projection::CheckpointStore;
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// assert_eq!(store.load_checkpoint("balances").await?, None);
/// store.save_checkpoint("balances", None, Position::new(5, 5)).await?;
/// store.save_checkpoint("balances", Some(Position::new(5, 5)), Position::new(9, 9)).await?;
/// // A second instance still believing the checkpoint is at 5/5 is refused.
/// let stale = store.save_checkpoint("balances", Some(Position::new(5, 5)), Position::new(7, 7)).await;
/// assert!(matches!(stale, Err(StoreError::CheckpointConflict { .. })));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The position stored for `name`; `None` when it never saved one (start from [`Position::START`]).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError>;

    /// Moves `name` to `position` if it is currently at `expected` (`None`: no checkpoint stored).
    ///
    /// # Errors
    /// [`StoreError::CheckpointConflict`] with the actual position when it is elsewhere (another instance moved
    /// it: stop, do not overwrite), [`StoreError::Backend`].
    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Position>,
        position: Position,
    ) -> Result<(), StoreError>;

    /// Forgets `name`'s checkpoint (a rebuild starts from the beginning). Deleting a missing one is not an error.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn delete_checkpoint(&self, name: &str) -> Result<(), StoreError>;
}
