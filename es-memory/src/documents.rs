//! Document projections' documents in memory, written with the checkpoint under one lock.

use async_trait::async_trait;
use es_core::projection::document::{DocumentChange, DocumentStore, Filter, valid_field};
use es_core::{Position, StoreError};
use serde_json::Value;

use crate::InMemoryEventStore;

#[async_trait]
impl DocumentStore for InMemoryEventStore {
    /// Nothing to create in memory.
    async fn prepare_documents(&self, _: &str, _: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn load_documents(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let documents = self.shared.documents.lock();
        let Some(stored) = documents.get(projection) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| stored.get(id).map(|d| (id.clone(), d.clone())))
            .collect())
    }

    async fn commit_documents(
        &self,
        projection: &str,
        changes: &[DocumentChange],
        checkpoint: Option<(Option<Position>, Position)>,
    ) -> Result<(), StoreError> {
        let mut checkpoints = self.shared.checkpoints.lock();
        if let Some((expected, _)) = checkpoint {
            let actual = checkpoints.get(projection).copied();
            if actual != expected {
                return Err(StoreError::CheckpointConflict {
                    name: projection.to_owned(),
                    expected,
                    actual,
                });
            }
        }
        let mut documents = self.shared.documents.lock();
        let stored = documents.entry(projection.to_owned()).or_default();
        for change in changes {
            match &change.document {
                Some(document) => stored.insert(change.id.clone(), document.clone()),
                None => stored.remove(&change.id),
            };
        }
        if let Some((_, to)) = checkpoint {
            checkpoints.insert(projection.to_owned(), to);
        }
        Ok(())
    }

    async fn reset_documents(&self, projection: &str) -> Result<(), StoreError> {
        let mut checkpoints = self.shared.checkpoints.lock();
        self.shared.documents.lock().remove(projection);
        checkpoints.remove(projection);
        Ok(())
    }

    async fn list_documents(
        &self,
        projection: &str,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        if let Some((field, _)) = filter.equals().filter(|(field, _)| !valid_field(field)) {
            return Err(StoreError::Backend {
                operation: "list documents",
                source: format!("`{field}` is not a valid document field name").into(),
            });
        }
        let documents = self.shared.documents.lock();
        let Some(stored) = documents.get(projection) else {
            return Ok(Vec::new());
        };
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after.to_owned()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(stored
            .range((from, std::ops::Bound::Unbounded))
            .filter(|(_, document)| {
                filter
                    .equals()
                    .is_none_or(|(field, value)| document.get(field) == Some(value))
            })
            .take(limit)
            .map(|(id, document)| (id.clone(), document.clone()))
            .collect())
    }
}
