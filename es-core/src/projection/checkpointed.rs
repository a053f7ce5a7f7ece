//! The projection worker for any store: checkpoints in a `CheckpointStore`, at-least-once delivery.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::StreamExt;

use crate::projection::CheckpointStore;
use crate::projection::handler::{describe, wants};
use crate::projection::replay::{rebuild_allowed, reset_allowed};
use crate::projection::worker::ApplyError;
use crate::projection::worker::{Acquired, BatchError, ProjectionWorker, WorkerError};
use crate::projection::{DeadLetter, DeadLetterStore, Projection, ProjectionOptions};
use crate::store::FeedFilter;
use crate::store::{Position, RecordedEvent, StoreError};

/// Runs a [`Projection`] with its checkpoint and dead letters in `store` (any [`CheckpointStore`] +
/// [`DeadLetterStore`], e.g. the in-memory or PostgreSQL store). Handlers run outside any transaction: after a
/// crash, the events since the last checkpoint are handled again (at-least-once), so handlers de-duplicate by
/// event id. The checkpoint moves by compare-and-set, so a second instance is fenced off, not doubled.
///
/// ```
/// # use es_core::{DomainEvent, Projection, RecordedEvent};
/// # use es_core::projection::HandlerError;
/// # #[derive(DomainEvent)] enum E { Happened }
/// # struct Counter;
/// # #[async_trait::async_trait] impl Projection for Counter {
/// #     type Event = E; fn name(&self) -> &str { "counter" }
/// #     async fn handle(&self, _: E, _: &RecordedEvent) -> Result<(), HandlerError> { Ok(()) }
/// # }
/// use es_core::ProjectionRunner;
/// use es_core::backend::CheckpointedWorker;
/// use es_core::projection::ProjectionOptions;
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
    name: String,
}

impl<P: Projection, C: CheckpointStore + DeadLetterStore + 'static> CheckpointedWorker<P, C> {
    /// A worker for `projection`, keeping its checkpoint and dead letters in `store`.
    pub fn new(projection: P, store: C, options: ProjectionOptions) -> Self {
        let name = projection.name().to_owned();
        Self {
            projection,
            store,
            options,
            name,
        }
    }

    /// Decodes and handles one event; on failure, the error's text and whether it is transient.
    async fn handle(&self, event: &RecordedEvent) -> Result<(), (String, bool)> {
        let typed = self.decode(event)?;
        self.handle_decoded(typed, event).await
    }

    fn decode(&self, event: &RecordedEvent) -> Result<P::Event, (String, bool)> {
        event
            .decode::<P::Event>()
            .map_err(|e| (e.to_string(), false))
    }

    async fn handle_decoded(
        &self,
        typed: P::Event,
        event: &RecordedEvent,
    ) -> Result<(), (String, bool)> {
        self.projection
            .handle(typed, event)
            .await
            .map_err(|e| describe(&e))
    }

    /// Handles `events` in order, one at a time; on failure, the index of the event that failed and why.
    async fn handle_in_order(
        &self,
        events: &[RecordedEvent],
    ) -> Result<(), (usize, (String, bool))> {
        for (index, event) in events.iter().enumerate() {
            self.handle(event).await.map_err(|e| (index, e))?;
        }
        Ok(())
    }

    /// Handles `events` up to `concurrency` keys at a time, each key's events in order, when the projection keys
    /// every one of them (else in order). On failure, the lowest failing index: every event before it was handled.
    async fn handle_keyed(&self, events: &[RecordedEvent]) -> Result<(), (usize, (String, bool))> {
        let mut decoded = Vec::with_capacity(events.len());
        let mut undecodable = None;
        for (index, event) in events.iter().enumerate() {
            match self.decode(event) {
                Ok(typed) => decoded.push(typed),
                Err(error) => {
                    undecodable = Some((index, error));
                    break;
                }
            }
        }
        let mut groups: Vec<Vec<(usize, P::Event)>> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for (index, typed) in decoded.into_iter().enumerate() {
            let Some(key) = self.projection.key(&typed, &events[index]) else {
                return self.handle_in_order(events).await;
            };
            let group = *by_key.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push((index, typed));
        }
        let failures: Vec<(usize, (String, bool))> = futures::stream::iter(groups)
            .map(|group| async move {
                for (index, typed) in group {
                    self.handle_decoded(typed, &events[index])
                        .await
                        .map_err(|e| (index, e))?;
                }
                Ok(())
            })
            .buffer_unordered(self.options.concurrency)
            .filter_map(|result: Result<(), (usize, (String, bool))>| async move { result.err() })
            .collect()
            .await;
        match failures
            .into_iter()
            .chain(undecodable)
            .min_by_key(|(index, _)| *index)
        {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
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

    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
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
        let handled = match self.options.concurrency {
            1 => self.handle_in_order(events).await,
            _ => self.handle_keyed(events).await,
        };
        if let Err((index, (error, transient))) = handled {
            if index > 0 {
                self.move_checkpoint(from, events[index - 1].position)
                    .await?;
            }
            return Err(ApplyError::Handler(BatchError {
                index,
                error,
                transient,
                kept_before: true,
                attempts: 1,
            }));
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
        let idempotent = self.projection.idempotent();
        match to {
            None => {
                rebuild_allowed(&self.name, self.projection.reset().await, idempotent)?;
                Ok(self.store.delete_checkpoint(&self.name).await?)
            }
            Some(to) => {
                reset_allowed(&self.name, from, to, idempotent)?;
                self.move_checkpoint(from, to).await
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
        if let Err((error, transient)) = self.handle(event).await {
            return Err(ApplyError::Handler(BatchError {
                index: 0,
                error,
                transient,
                kept_before: true,
                attempts: 1,
            }));
        }
        self.store
            .remove_dead_letter(&self.name, letter.event_id)
            .await
            .map_err(|e| ApplyError::Worker(e.into()))
    }

    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        Ok(self.store.park(letter).await?)
    }
}
