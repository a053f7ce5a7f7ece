//! The projection worker for any store: checkpoints in a `CheckpointStore`, at-least-once delivery.

use async_trait::async_trait;

use crate::projection::worker::ApplyError;
use crate::projection::{
    BatchError, DeadLetter, DeadLetterStore, Projection, ProjectionOptions, ProjectionWorker,
    WorkerError, describe, wants,
};
use crate::{CheckpointStore, Position, RecordedEvent, StoreError, Upcasters};

/// Runs a [`Projection`] with its checkpoint and dead letters in `store` (any [`CheckpointStore`] +
/// [`DeadLetterStore`], e.g. the in-memory or PostgreSQL store). Handlers run outside any transaction: after a
/// crash, the events since the last checkpoint are handled again (at-least-once), so handlers de-duplicate by
/// event id. The checkpoint moves by compare-and-set, so a second instance is fenced off, not doubled.
///
/// ```
/// # use es_core::{DomainEvent, HandlerError, Projection, RecordedEvent};
/// # #[derive(DomainEvent)] enum E { Happened }
/// # struct Counter;
/// # #[async_trait::async_trait] impl Projection for Counter {
/// #     type Event = E; fn name(&self) -> &str { "counter" }
/// #     async fn handle(&self, _: E, _: &RecordedEvent) -> Result<(), HandlerError> { Ok(()) }
/// # }
/// use es_core::{CheckpointedWorker, ProjectionOptions, ProjectionRunner};
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = InMemoryEventStore::new();
/// let worker = CheckpointedWorker::new(Counter, store.clone(), ProjectionOptions::default());
/// let running = ProjectionRunner::new(store).with(worker).start();
/// running.shutdown().await;
/// # }
/// ```
#[derive(Debug)]
pub struct CheckpointedWorker<P, C> {
    projection: P,
    store: C,
    options: ProjectionOptions,
    upcasters: Upcasters,
    name: String,
}

impl<P: Projection, C: CheckpointStore + DeadLetterStore + 'static> CheckpointedWorker<P, C> {
    /// A worker for `projection`, keeping its checkpoint and dead letters in `store`.
    pub fn new(projection: P, store: C, options: ProjectionOptions) -> Self {
        let upcasters = projection.upcasters();
        let name = projection.name().to_owned();
        Self {
            projection,
            store,
            options,
            upcasters,
            name,
        }
    }

    /// Decodes and handles one event; on failure, the error's text and whether it is transient.
    async fn handle(&self, event: &RecordedEvent) -> Result<(), (String, bool)> {
        let typed = self
            .upcasters
            .decode::<P::Event>(event)
            .map_err(|e| (e.to_string(), false))?;
        self.projection
            .handle(typed, event)
            .await
            .map_err(|e| describe(&e))
    }

    async fn move_checkpoint(
        &self,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), WorkerError> {
        match self.store.save_checkpoint(&self.name, from, to).await {
            Ok(()) => Ok(()),
            Err(StoreError::CheckpointConflict {
                expected, actual, ..
            }) => Err(WorkerError::Fenced {
                projection: self.name.clone(),
                expected,
                actual,
            }),
            Err(other) => Err(other.into()),
        }
    }
}

#[async_trait]
impl<P: Projection, C: CheckpointStore + DeadLetterStore + 'static> ProjectionWorker
    for CheckpointedWorker<P, C>
{
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> &ProjectionOptions {
        &self.options
    }

    async fn acquire(&mut self) -> Result<(), WorkerError> {
        Ok(())
    }

    fn wants(&self, event: &RecordedEvent) -> bool {
        wants::<P::Event>(&self.upcasters, event)
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
        for (index, event) in events.iter().enumerate() {
            if let Err(error) = self.handle(event).await {
                if index > 0 {
                    self.move_checkpoint(from, events[index - 1].position)
                        .await?;
                }
                let (error, transient) = error;
                return Err(ApplyError::Handler(BatchError {
                    index,
                    error,
                    transient,
                    kept_before: true,
                }));
            }
        }
        Ok(self.move_checkpoint(from, to).await?)
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let position = letter.position;
        self.store.park(letter).await?;
        self.move_checkpoint(from, position).await
    }

    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        match to {
            None => {
                self.projection
                    .reset()
                    .await
                    .map_err(|e| WorkerError::Reset {
                        projection: self.name.clone(),
                        error: e.to_string(),
                    })?;
                Ok(self.store.delete_checkpoint(&self.name).await?)
            }
            Some(to) => self.move_checkpoint(from, to).await,
        }
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        Ok(self.store.dead_letters(&self.name).await?)
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        if let Err((error, transient)) = self.handle(event).await {
            return Err(ApplyError::Handler(BatchError {
                index: 0,
                error,
                transient,
                kept_before: true,
            }));
        }
        self.store
            .remove_dead_letter(&self.name, letter.event_id)
            .await
            .map_err(|e| ApplyError::Worker(e.into()))
    }
}
