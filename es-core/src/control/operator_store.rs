//! [`OperatorStore`]: what every store offers an operator beyond the store traits — where it is, its migrations,
//! its streams and the newest events. The `es` CLI and its admin page are written against it alone.

use async_trait::async_trait;

use crate::control::{ControlStore, MigrationStatus, StreamSummary};
use crate::evolution::EventCatalog;
use crate::process::ProcessStore;
use crate::projection::{CheckpointStore, DeadLetterStore};
use crate::store::{EventStore, Position, StoreError};

/// A store as an operator sees it: the event store and every table beside it (checkpoints, dead letters, the
/// control plane, process managers, the event catalog), plus the browsing the store traits do not cover.
/// Implemented by every store: memory, PostgreSQL, SQLite. [`Operator`](crate::control::Operator) reads
/// projections, dead letters and events through it.
///
/// ```
/// use es_core::control::OperatorStore;
/// use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// for name in ["order-1", "order-2", "invoice-1"] {
///     let event = NewEvent::new("Happened", 1, serde_json::json!({}));
///     store.append(&StreamId::new(name)?, ExpectedVersion::Any, vec![event]).await?;
/// }
/// let orders = store.streams(Some("order"), None, 10).await?;
/// assert_eq!(orders.iter().map(|s| s.stream_id.as_str()).collect::<Vec<_>>(), ["order-1", "order-2"]);
/// let newest = store.read_all(store.before_newest(2).await?, 10).await?;
/// assert_eq!(newest.len(), 2);
/// assert!(store.migration_status().await?.is_current());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait OperatorStore:
    EventStore
    + EventCatalog
    + CheckpointStore
    + DeadLetterStore
    + ControlStore
    + ProcessStore
    + Clone
    + Send
    + Sync
    + 'static
{
    /// Where its tables are, as printed: ``schema `es` ``, ``file `bank.db` ``, `memory`.
    fn location(&self) -> String;

    /// Creates its tables, or brings them up to date (nothing to do for a store that migrates when opened).
    ///
    /// # Errors
    /// [`StoreError::Backend`] naming the migration that failed.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Which of this build's migrations it has.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError>;

    /// Up to `limit` streams after `after` (by id; `None`: from the first), of `category` (the part before the
    /// first `-`) or of all.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError>;

    /// The position after which the global stream holds its `n` newest events (what `es events tail` reads
    /// from); [`Position::START`] when it holds `n` or fewer.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn before_newest(&self, n: usize) -> Result<Position, StoreError>;
}
