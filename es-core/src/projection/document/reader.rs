//! [`Documents`]: a document projection's documents, read back typed.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::projection::document::{DocumentStore, Filter};
use crate::store::{StoreError, serde_summary};

/// A document could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document no longer deserialises into the document type (its shape changed: rebuild the
    /// projection). The text names the projection and the id, never the document's values.
    #[error("document `{id}` of projection `{projection}` does not deserialise: {reason}")]
    Corrupt {
        /// The projection.
        projection: String,
        /// The document's id.
        id: String,
        /// What serde said, without the document's values.
        reason: String,
    },
}

/// The documents of projection `projection`, typed as `D`. Wait for a write to show with the runner's
/// [`wait_for`](crate::projection::RunningProjections::wait_for) (read-your-writes), then read. The
/// [module](crate::projection::document) has a runnable example.
#[derive(Debug)]
pub struct Documents<D, S> {
    store: S,
    projection: String,
    document: PhantomData<fn() -> D>,
}

impl<D: DeserializeOwned, S: DocumentStore> Documents<D, S> {
    /// The documents of `projection` in `store`.
    pub fn new(store: S, projection: impl Into<String>) -> Self {
        Self {
            store,
            projection: projection.into(),
            document: PhantomData,
        }
    }

    /// Document `id`; `None` when there is none.
    ///
    /// # Errors
    /// [`DocumentError`].
    pub async fn get(&self, id: &str) -> Result<Option<D>, DocumentError> {
        Ok(self.get_many(&[id.to_owned()]).await?.pop().map(|(_, d)| d))
    }

    /// The documents among `ids` that exist, with their ids, in the order of `ids`.
    ///
    /// # Errors
    /// [`DocumentError`].
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<(String, D)>, DocumentError> {
        let mut found = self.store.load_documents(&self.projection, ids).await?;
        found.sort_by_key(|(id, _)| ids.iter().position(|wanted| wanted == id));
        found
            .into_iter()
            .map(|(id, value)| self.typed(id, value))
            .collect()
    }

    /// Up to `limit` documents matching `filter`, by id, after the id `after` (the last of the previous page).
    ///
    /// # Errors
    /// [`DocumentError`].
    pub async fn list(
        &self,
        filter: Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, D)>, DocumentError> {
        self.store
            .list_documents(&self.projection, &filter, after, limit)
            .await?
            .into_iter()
            .map(|(id, value)| self.typed(id, value))
            .collect()
    }

    fn typed(&self, id: String, value: Value) -> Result<(String, D), DocumentError> {
        match serde_json::from_value(value) {
            Ok(document) => Ok((id, document)),
            Err(error) => Err(DocumentError::Corrupt {
                projection: self.projection.clone(),
                id,
                reason: serde_summary(&error),
            }),
        }
    }
}
