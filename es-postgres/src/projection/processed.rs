//! De-duplication for handlers with side effects outside the database.

use es_core::{EventId, StoreError};
use sqlx::PgConnection;

use crate::PgEventStore;
use crate::error::backend;

impl PgEventStore {
    /// Records that `consumer` has processed `event_id`, on `tx` (inside the transaction that records the effect's
    /// bookkeeping). Returns `true` the first time, `false` when it was already recorded: skip the effect then.
    /// The de-duplication helper for at-least-once handlers with side effects outside the database.
    ///
    /// ```no_run
    /// # #![allow(dead_code)]
    /// # use es_core::EventId;
    /// # async fn send_email() {}
    /// # async fn f(store: es_postgres::PgEventStore, event_id: EventId) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// if store.mark_processed(&mut tx, "welcome-mail", event_id).await? {
    ///     send_email().await;
    /// }
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    pub async fn mark_processed(
        &self,
        tx: &mut PgConnection,
        consumer: &str,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.inner.sql.mark_processed)
            .bind(consumer)
            .bind(event_id.as_uuid())
            .execute(tx)
            .await
            .map_err(backend("mark_processed"))?;
        Ok(done.rows_affected() == 1)
    }
}

/// A consumer's transaction on PostgreSQL, as an [`IntegrationHandler`](es_core::integration::IntegrationHandler)
/// on a [`PgEventStore`] receives it: write through `&mut **tx`.
pub type PgTransaction = sqlx::Transaction<'static, sqlx::Postgres>;

#[async_trait::async_trait]
impl es_core::integration::Inbox for PgEventStore {
    type Transaction = PgTransaction;

    async fn begin(&self) -> Result<PgTransaction, StoreError> {
        crate::error::retrying(&self.inner.pool, || self.inner.pool.begin())
            .await
            .map_err(backend("begin"))
    }

    async fn mark_processed(
        &self,
        tx: &mut PgTransaction,
        consumer: &str,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        PgEventStore::mark_processed(self, tx, consumer, event_id).await
    }

    async fn commit(&self, tx: PgTransaction) -> Result<(), StoreError> {
        tx.commit().await.map_err(backend("commit"))
    }
}
