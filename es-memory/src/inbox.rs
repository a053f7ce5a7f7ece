//! The consumers' inbox in memory: processed event ids, kept by a transaction that holds the inbox until it commits.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use es_core::integration::Inbox;
use es_core::{EventId, StoreError};
use tokio::sync::OwnedMutexGuard;

use crate::InMemoryEventStore;

/// (consumer, event id) pairs processed.
pub(crate) type Processed = HashSet<(String, EventId)>;

/// A consumer's transaction on the in-memory inbox: it holds the inbox (transactions take turns), and its marks
/// are kept only when it commits.
#[derive(Debug)]
pub struct MemoryTransaction {
    processed: OwnedMutexGuard<Processed>,
    marked: Vec<(String, EventId)>,
}

#[async_trait]
impl Inbox for InMemoryEventStore {
    type Transaction = MemoryTransaction;

    async fn begin(&self) -> Result<MemoryTransaction, StoreError> {
        Ok(MemoryTransaction {
            processed: Arc::clone(&self.shared.inbox).lock_owned().await,
            marked: Vec::new(),
        })
    }

    async fn mark_processed(
        &self,
        tx: &mut MemoryTransaction,
        consumer: &str,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        let key = (consumer.to_owned(), event_id);
        if tx.processed.contains(&key) || tx.marked.contains(&key) {
            return Ok(false);
        }
        tx.marked.push(key);
        Ok(true)
    }

    async fn commit(&self, mut tx: MemoryTransaction) -> Result<(), StoreError> {
        let marked = std::mem::take(&mut tx.marked);
        tx.processed.extend(marked);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_mark_is_kept_once_per_consumer_and_only_when_committed() {
        let store = InMemoryEventStore::new();
        let id = EventId::new();
        let mut tx = store.begin().await.unwrap();
        assert!(store.mark_processed(&mut tx, "ledger", id).await.unwrap());
        assert!(!store.mark_processed(&mut tx, "ledger", id).await.unwrap());
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        assert!(
            store.mark_processed(&mut tx, "ledger", id).await.unwrap(),
            "rolled back"
        );
        store.commit(tx).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(!store.mark_processed(&mut tx, "ledger", id).await.unwrap());
        assert!(store.mark_processed(&mut tx, "mailer", id).await.unwrap());
    }
}
