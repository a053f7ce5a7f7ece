//! Document projections' documents in memory, written with the checkpoint under one lock.

use async_trait::async_trait;
use es_core::projection::document::{
    DocumentChange, DocumentStore, Filter, valid_field, version_key,
};
use es_core::{Position, StoreError};
use serde_json::Value;

use crate::InMemoryEventStore;

impl InMemoryEventStore {
    /// The key `projection` reads: its live version's when it is a projection's name, else itself.
    fn read_key(&self, projection: &str) -> String {
        self.shared
            .document_versions
            .lock()
            .get(projection)
            .map_or_else(|| projection.to_owned(), |(_, key)| key.clone())
    }
}

/// Whether `key` is a version of `projection`'s documents (its name, or `name@vN`).
fn is_version_of(key: &str, projection: &str) -> bool {
    key == projection
        || key
            .strip_prefix(projection)
            .is_some_and(|rest| rest.starts_with("@v"))
}

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
        let key = self.read_key(projection);
        let documents = self.shared.documents.lock();
        let Some(stored) = documents.get(&key) else {
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

    async fn live_documents(&self, projection: &str, version: u32) -> Result<u32, StoreError> {
        let _checkpoints = self.shared.checkpoints.lock();
        let mut versions = self.shared.document_versions.lock();
        let (live, _) = versions
            .entry(projection.to_owned())
            .or_insert_with(|| (version, version_key(projection, version)));
        Ok(*live)
    }

    async fn switch_documents(&self, projection: &str, version: u32) -> Result<(), StoreError> {
        let key = version_key(projection, version);
        let retired = |other: &String| other != &key && is_version_of(other, projection);
        let mut checkpoints = self.shared.checkpoints.lock();
        checkpoints.retain(|name, _| !retired(name));
        self.shared
            .dead_letters
            .lock()
            .retain(|letter| !retired(&letter.projection));
        self.shared
            .documents
            .lock()
            .retain(|name, _| !retired(name));
        self.shared
            .document_versions
            .lock()
            .insert(projection.to_owned(), (version, key.clone()));
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
        let key = self.read_key(projection);
        let documents = self.shared.documents.lock();
        let Some(stored) = documents.get(&key) else {
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
