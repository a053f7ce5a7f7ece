//! [`DocumentStore`]: what a store implements to keep document projections.

use async_trait::async_trait;
use serde_json::Value;

use crate::store::{Position, StoreError};

/// One document written by a batch: its new JSON, or `None` to delete it.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentChange {
    /// The document's id.
    pub id: String,
    /// Its JSON; `None` deletes it.
    pub document: Option<Value>,
}

/// Which documents a [`list`](DocumentStore::list_documents) returns: all, or those whose top-level `field`
/// equals `value`.
///
/// ```
/// use es_core::projection::document::Filter;
///
/// let filter = Filter::field("count", 2);
/// assert_eq!(filter.name(), Some("count"));
/// assert!(Filter::all().name().is_none());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    field: Option<(String, Value)>,
}

impl Filter {
    /// Every document.
    pub fn all() -> Self {
        Self { field: None }
    }

    /// The documents whose top-level `field` equals `value` (declare the field in
    /// [`indexed_fields`](crate::projection::document::DocumentProjection::indexed_fields) to have it indexed).
    pub fn field(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            field: Some((field.into(), value.into())),
        }
    }

    /// The field filtered on, if any.
    pub fn name(&self) -> Option<&str> {
        self.field.as_ref().map(|(name, _)| name.as_str())
    }

    /// The field and the value it must equal, if any.
    pub fn equals(&self) -> Option<(&str, &Value)> {
        self.field
            .as_ref()
            .map(|(name, value)| (name.as_str(), value))
    }
}

/// Where document projections keep their documents: every store implements it, writing a batch's documents and
/// the projection's checkpoint in one transaction.
///
/// **Versions.** Documents are kept per key: a projection's name for its version 1, `name@vN` for version N (see
/// [`version_key`]). Reads ([`load_documents`](Self::load_documents), [`list_documents`](Self::list_documents))
/// given a projection's name read the version readers see ([`live_documents`](Self::live_documents)); given a
/// version key, that version.
#[async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// Creates what the projection's documents need (its indexes on `fields`); safe to call again.
    ///
    /// # Errors
    /// [`StoreError::Backend`], also for a field name that is not lower-case letters, digits and `_` (see
    /// [`valid_field`]).
    async fn prepare_documents(&self, projection: &str, fields: &[&str]) -> Result<(), StoreError>;

    /// The stored documents of `projection` among `ids` (missing ones left out).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn load_documents(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError>;

    /// Writes `changes` and, when `checkpoint` is `Some((from, to))`, moves the projection's checkpoint from `from`
    /// to `to` (compare-and-set), all in one transaction: nothing is written when the checkpoint moved meanwhile.
    ///
    /// # Errors
    /// [`StoreError::CheckpointConflict`] when the checkpoint is not at `from`; [`StoreError::Backend`].
    async fn commit_documents(
        &self,
        projection: &str,
        changes: &[DocumentChange],
        checkpoint: Option<(Option<Position>, Position)>,
    ) -> Result<(), StoreError>;

    /// Deletes every document of `projection` and its checkpoint, in one transaction (for a rebuild).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn reset_documents(&self, projection: &str) -> Result<(), StoreError>;

    /// The version of `projection`'s documents that readers see; when none is yet, `version` becomes it (the first
    /// version to run is live from its first batch).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn live_documents(&self, projection: &str, version: u32) -> Result<u32, StoreError>;

    /// Makes `version` of `projection`'s documents the one readers see, in one transaction: the other versions'
    /// checkpoints (so their workers stop at their next batch), dead letters and documents are deleted first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn switch_documents(&self, projection: &str, version: u32) -> Result<(), StoreError>;

    /// Up to `limit` documents of `projection` matching `filter`, by id, after `after` (by id; `None`: from the
    /// first).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn list_documents(
        &self,
        projection: &str,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError>;
}

/// The key of version `version` of `projection`'s documents, checkpoint and dead letters: the name for version 1,
/// `name@vN` after.
///
/// ```
/// use es_core::projection::document::version_key;
///
/// assert_eq!(version_key("loans", 1), "loans");
/// assert_eq!(version_key("loans", 2), "loans@v2");
/// ```
pub fn version_key(projection: &str, version: u32) -> String {
    match version {
        0 | 1 => projection.to_owned(),
        version => format!("{projection}@v{version}"),
    }
}

/// Whether `field` may name an indexed document field: 1 to 63 lower-case ASCII letters, digits and `_`, not
/// starting with a digit (so a store can build its index from it without quoting).
///
/// ```
/// use es_core::projection::document::valid_field;
///
/// assert!(valid_field("member_id") && !valid_field("a;drop") && !valid_field("") && !valid_field("9lives"));
/// ```
pub fn valid_field(field: &str) -> bool {
    !field.is_empty()
        && field.len() <= 63
        && !field.starts_with(|c: char| c.is_ascii_digit())
        && field
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
