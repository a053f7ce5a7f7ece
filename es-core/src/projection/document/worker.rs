//! [`DocumentWorker`]: runs a [`DocumentProjection`] on any [`DocumentStore`], a batch's documents and its
//! checkpoint in one transaction.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::projection::document::{
    DocumentChange, DocumentProjection, DocumentStore, valid_field, version_key,
};
use crate::projection::handler::wants;
use crate::projection::replay::reset_allowed;
use crate::projection::worker::{Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError};
use crate::projection::{CheckpointStore, DeadLetter, DeadLetterStore, ProjectionOptions};
use crate::store::{EventStore, FeedFilter, Position, RecordedEvent, StoreError, serde_summary};

/// Runs a [`DocumentProjection`]: per batch, one read of the documents it touches, the fold in event order, one
/// write of the changed documents with the checkpoint (compare-and-set) in the same transaction — exactly once
/// per event on PostgreSQL and SQLite. Several processes may run the same projection: a batch commits only if the
/// checkpoint is still where it was read, and the instance that lost the race reads on from the new checkpoint
/// (optimistic: no claim, so the losers' work is wasted — run one instance where batches are expensive). Rebuild
/// and reset empty the documents (the framework owns them); a reset back is refused (folding an event twice is not
/// idempotent in general). A new [`version`](DocumentProjection::version) runs as `name@vN` beside the live one and
/// becomes the one readers see once it has caught up with the head (blue/green). See the
/// [module](crate::projection::document) for an example.
#[derive(Debug)]
pub struct DocumentWorker<P, S> {
    projection: P,
    store: S,
    options: ProjectionOptions,
    /// The key of this version: the checkpoint's, the dead letters', the documents'.
    name: String,
    prepared: bool,
    /// Whether this version is built beside the live one, to be switched to once caught up.
    building: bool,
}

/// A batch stopped at event `index`: its error, whether transient.
type Stopped = (usize, String);

impl<P, S> DocumentWorker<P, S>
where
    P: DocumentProjection,
    S: DocumentStore + CheckpointStore + DeadLetterStore + EventStore,
{
    /// A worker for `projection`, keeping its documents, checkpoint and dead letters in `store`.
    pub fn new(projection: P, store: S, options: ProjectionOptions) -> Self {
        let name = version_key(projection.name(), projection.version());
        Self {
            projection,
            store,
            options,
            name,
            prepared: false,
            building: false,
        }
    }

    /// Folds `events` into their documents: the changes of the events before the first that failed, and that
    /// failure.
    async fn fold(
        &self,
        events: &[RecordedEvent],
    ) -> Result<(Vec<DocumentChange>, Option<Stopped>), StoreError> {
        let mut typed = Vec::with_capacity(events.len());
        let mut stopped = None;
        for (index, record) in events.iter().enumerate() {
            if !wants::<P::Event>(
                self.projection.categories(),
                record.stream_id.as_str(),
                &record.event_type,
            ) {
                continue;
            }
            match record.decode::<P::Event>() {
                Ok(event) => {
                    let id = self.projection.document_id(&event, record);
                    typed.push((index, id, event, record));
                }
                Err(error) => {
                    stopped = Some((index, error.to_string()));
                    break;
                }
            }
        }
        let ids: Vec<String> = typed
            .iter()
            .filter_map(|(_, id, _, _)| id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut stored: HashMap<String, serde_json::Value> = self
            .store
            .load_documents(&self.name, &ids)
            .await?
            .into_iter()
            .collect();
        let mut documents: HashMap<String, Option<P::Document>> = HashMap::new();
        let mut changed: HashMap<String, Option<serde_json::Value>> = HashMap::new();
        let mut order = Vec::new();
        for (index, id, event, record) in typed {
            let Some(id) = id else { continue };
            let current = match documents.remove(&id) {
                Some(document) => document,
                None => match stored
                    .remove(&id)
                    .map(serde_json::from_value::<P::Document>)
                {
                    None => None,
                    Some(Ok(document)) => Some(document),
                    Some(Err(error)) => {
                        let reason = format!(
                            "stored document `{id}` does not deserialise: {}",
                            serde_summary(&error)
                        );
                        stopped = Some((index, reason));
                        break;
                    }
                },
            };
            let next = self.projection.apply(current, &event, record);
            let value = match next.as_ref().map(serde_json::to_value).transpose() {
                Ok(value) => value,
                Err(error) => {
                    stopped = Some((
                        index,
                        format!("document `{id}` does not serialise: {error}"),
                    ));
                    break;
                }
            };
            if changed.insert(id.clone(), value).is_none() {
                order.push(id.clone());
            }
            documents.insert(id, next);
        }
        let changes = order
            .into_iter()
            .map(|id| {
                let document = changed.remove(&id).flatten();
                DocumentChange { id, document }
            })
            .collect();
        Ok((changes, stopped))
    }

    /// A version built beside the live one becomes the live one once it has caught up with the head.
    async fn switch_if_caught_up(&mut self, to: Position) -> Result<(), WorkerError> {
        if !self.building || self.store.head().await?.is_some_and(|head| head > to) {
            return Ok(());
        }
        let (projection, version) = (self.projection.name(), self.projection.version());
        self.store.switch_documents(projection, version).await?;
        tracing::info!(
            projection,
            version,
            "readers switched to the new documents version"
        );
        self.building = false;
        Ok(())
    }

    async fn commit(
        &self,
        changes: &[DocumentChange],
        checkpoint: Option<(Option<Position>, Position)>,
    ) -> Result<(), WorkerError> {
        match self
            .store
            .commit_documents(&self.name, changes, checkpoint)
            .await
        {
            Ok(()) => Ok(()),
            // Another instance committed from the same checkpoint first: this batch wrote nothing; read on from
            // the stored checkpoint (the runner recovers from a lost worker that way).
            Err(StoreError::CheckpointConflict {
                expected, actual, ..
            }) => Err(WorkerError::Lost {
                projection: self.name.clone(),
                error: format!(
                    "another instance moved the checkpoint from {expected:?} to {actual:?} first; reading on from it"
                ),
            }),
            Err(other) => Err(other.into()),
        }
    }
}

#[async_trait]
impl<P, S> ProjectionWorker for DocumentWorker<P, S>
where
    P: DocumentProjection,
    S: DocumentStore + CheckpointStore + DeadLetterStore + EventStore,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> &ProjectionOptions {
        &self.options
    }

    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
        if !self.prepared {
            let fields = self.projection.indexed_fields();
            if let Some(bad) = fields.iter().find(|field| !valid_field(field)) {
                return Err(WorkerError::Other {
                    projection: self.name.clone(),
                    error: format!(
                        "indexed field `{bad}` is not lower-case letters, digits and `_` (at most 63)"
                    ),
                });
            }
            self.store.prepare_documents(&self.name, fields).await?;
            self.prepared = true;
        }
        let (projection, version) = (self.projection.name(), self.projection.version().max(1));
        let live = self.store.live_documents(projection, version).await?;
        if live > version {
            return Err(WorkerError::Other {
                projection: self.name.clone(),
                error: format!(
                    "documents `{projection}` are live at version {live}, newer than this worker's {version}: it stops"
                ),
            });
        }
        self.building = live < version;
        Ok(Acquired::Active)
    }

    fn feed_filter(&self) -> FeedFilter {
        FeedFilter::of::<P::Event>(self.projection.categories())
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        wants::<P::Event>(self.projection.categories(), stream, event_type)
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        Ok(self.store.load_checkpoint(&self.name).await?)
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError> {
        let (changes, stopped) = self.fold(events).await.map_err(WorkerError::from)?;
        let Some((index, error)) = stopped else {
            self.commit(&changes, Some((from, to))).await?;
            return Ok(self.switch_if_caught_up(to).await?);
        };
        if index > 0 {
            self.commit(&changes, Some((from, events[index - 1].position)))
                .await?;
        }
        Err(ApplyError::Handler(BatchError {
            index,
            error,
            transient: false,
            kept_before: true,
            attempts: 1,
        }))
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let position = letter.position;
        self.store.park(letter).await?;
        self.commit(&[], Some((from, position))).await
    }

    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        match to {
            None => Ok(self.store.reset_documents(&self.name).await?),
            Some(to) => {
                reset_allowed(&self.name, from, to, false)?;
                self.commit(&[], Some((from, to))).await
            }
        }
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        Ok(self.store.dead_letters(&self.name).await?)
    }

    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError> {
        Ok(self
            .store
            .remove_dead_letter(&self.name, letter.event_id)
            .await?)
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let (changes, stopped) = self
            .fold(std::slice::from_ref(event))
            .await
            .map_err(WorkerError::from)?;
        if let Some((_, error)) = stopped {
            return Err(ApplyError::Handler(BatchError {
                index: 0,
                error,
                transient: false,
                kept_before: true,
                attempts: 1,
            }));
        }
        self.commit(&changes, None).await?;
        self.store
            .remove_dead_letter(&self.name, letter.event_id)
            .await
            .map_err(|e| ApplyError::Worker(e.into()))
    }

    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        Ok(self.store.park(letter).await?)
    }
}
