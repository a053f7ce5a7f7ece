//! The consumers' inbox on SQLite: processed event ids recorded in the write transaction of the handler's writes.

use async_trait::async_trait;
use chrono::Utc;
use es_core::integration::Inbox;
use es_core::{EventId, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::micros;
use crate::transaction::WriteTx;

/// A consumer's write transaction on the store's file (`BEGIN IMMEDIATE` on the writer connection), as an
/// [`IntegrationHandler`](es_core::integration::IntegrationHandler) on a [`SqliteEventStore`] receives it: write
/// through `&mut **tx`. Dropped uncommitted, it rolls back.
#[derive(Debug)]
pub struct SqliteTransaction(WriteTx);

impl std::ops::Deref for SqliteTransaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.0
    }
}

impl std::ops::DerefMut for SqliteTransaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.0
    }
}

#[async_trait]
impl Inbox for SqliteEventStore {
    type Transaction = SqliteTransaction;

    async fn begin(&self) -> Result<SqliteTransaction, StoreError> {
        SqliteEventStore::begin(self)
            .await
            .map(SqliteTransaction)
            .map_err(backend("begin"))
    }

    async fn mark_processed(
        &self,
        tx: &mut SqliteTransaction,
        consumer: &str,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(consumer)
        .bind(event_id.as_uuid())
        .bind(micros(Utc::now()))
        .execute(&mut **tx)
        .await
        .map_err(backend("mark_processed"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn commit(&self, tx: SqliteTransaction) -> Result<(), StoreError> {
        tx.0.commit().await.map_err(backend("commit"))
    }
}
