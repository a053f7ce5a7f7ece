//! [`DocumentProjection`]: which document an event changes, and how.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::DomainEvent;
use crate::store::RecordedEvent;

/// A read model of JSON documents, one per id: the projection says which document each event changes and what it
/// becomes; the framework stores them, in the transaction that moves the checkpoint. See the
/// [module](crate::projection::document) for an example.
pub trait DocumentProjection: Send + Sync + 'static {
    /// The events it reads.
    type Event: DomainEvent;
    /// The document: stored as JSON.
    type Document: Serialize + DeserializeOwned + Send + Sync;

    /// Its unique name: the key of its documents, checkpoint, dead letters and status.
    fn name(&self) -> &str;

    /// The id of the document `event` changes: the stream's aggregate id for one document per stream, an id the
    /// event carries for one document per that id; `None`: the event changes no document.
    fn document_id(&self, event: &Self::Event, record: &RecordedEvent) -> Option<String>;

    /// The document after `event` (`current` is `None` for a document not stored yet); `None` deletes it.
    fn apply(
        &self,
        current: Option<Self::Document>,
        event: &Self::Event,
        record: &RecordedEvent,
    ) -> Option<Self::Document>;

    /// The top-level fields readers filter on ([`Filter::field`](crate::projection::document::Filter::field)):
    /// indexed on PostgreSQL and SQLite. Lower-case letters, digits and `_`.
    fn indexed_fields(&self) -> &[&str] {
        &[]
    }

    /// The version of its documents (1 by default). Raise it when the document type or its meaning changes: the
    /// new version is built from the start beside the live one (its worker runs as `name@vN`, with its own
    /// checkpoint), readers keep reading the live one, and once the new version has caught up with the head readers
    /// switch to it in one transaction and the old version's documents are deleted (blue/green). A worker of an
    /// older version than the live one refuses to run.
    fn version(&self) -> u32 {
        1
    }

    /// The stream categories it reads: by default its event type's.
    fn categories(&self) -> &[&str] {
        Self::Event::CATEGORIES
    }
}
