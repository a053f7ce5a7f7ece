//! The stores `es` operates: PostgreSQL (`--database-url`, a schema) or a SQLite file (`--sqlite`).

use es_core::control::{ControlStore, MigrationStatus, StreamSummary};
use es_core::evolution::EventCatalog;
use es_core::process::ProcessStore;
use es_core::projection::{CheckpointStore, DeadLetterStore};
use es_core::{EventStore, Position, StoreError};
use es_postgres::PgEventStore;
use es_sqlite::SqliteEventStore;

use crate::failure::Failure;

/// A store `es` can operate: every store trait, and what an operator browses besides.
#[es_core::async_trait]
pub(crate) trait Backend:
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
    /// Where its tables are, as printed: ``schema `es` ``, ``file `bank.db` ``.
    fn location(&self) -> String;

    /// Creates its tables, or brings them up to date.
    async fn migrate(&self) -> Result<(), Failure>;

    /// Which migrations it has.
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError>;

    /// Up to `limit` streams after `after`, of `category` or of all.
    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError>;

    /// The position after which the global stream holds its `n` newest events.
    async fn before_newest(&self, n: usize) -> Result<Position, StoreError>;
}

#[es_core::async_trait]
impl Backend for PgEventStore {
    fn location(&self) -> String {
        format!("schema `{}`", self.schema())
    }

    async fn migrate(&self) -> Result<(), Failure> {
        Ok(PgEventStore::migrate(self).await?)
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        PgEventStore::migration_status(self).await
    }

    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        PgEventStore::streams(self, category, after, limit).await
    }

    async fn before_newest(&self, n: usize) -> Result<Position, StoreError> {
        PgEventStore::before_newest(self, n).await
    }
}

#[es_core::async_trait]
impl Backend for SqliteEventStore {
    fn location(&self) -> String {
        format!("file `{}`", self.path().display())
    }

    /// Opening the file migrated it already.
    async fn migrate(&self) -> Result<(), Failure> {
        Ok(())
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        SqliteEventStore::migration_status(self).await
    }

    async fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        SqliteEventStore::streams(self, category, after, limit).await
    }

    async fn before_newest(&self, n: usize) -> Result<Position, StoreError> {
        SqliteEventStore::before_newest(self, n).await
    }
}
