//! The relay: a checkpointed projection that publishes integration events through a [`Publisher`].

use async_trait::async_trait;
use tracing::Instrument;

use crate::event::DomainEvent;
use crate::integration::{IntegrationEvent, Outgoing, Publisher};
use crate::projection::{
    CheckpointStore, DeadLetterStore, HandlerError, ProjectionOptions, RunningProjections,
    TransientError,
};
use crate::projection::{Projection, ProjectionRunner};
use crate::store::{EventStore, RecordedEvent};

/// Turns private domain events into public integration events.
pub trait IntegrationMapper: Send + Sync + 'static {
    /// The domain events it reads.
    type Event: DomainEvent;

    /// The integration event for `event`, or `None` to keep it private.
    ///
    /// # Errors
    /// Any error: handled like a failing projection handler (retries, then the failure policy).
    fn map(
        &self,
        event: &Self::Event,
        record: &RecordedEvent,
    ) -> Result<Option<IntegrationEvent>, HandlerError>;
}

/// Publishes a store's events, mapped, through a [`Publisher`]; run it with [`Relay::start`]. The
/// [module documentation](crate::integration) has an example.
pub struct Relay<M, P> {
    source: String,
    mapper: M,
    publisher: P,
}

impl<M, P> std::fmt::Debug for Relay<M, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<M: IntegrationMapper, P: Publisher> Relay<M, P> {
    /// A relay publishing as `source` (the CloudEvents `source`; the relay's projection is `relay-<source>`).
    pub fn new(source: impl Into<String>, mapper: M, publisher: P) -> Self {
        Self {
            source: source.into(),
            mapper,
            publisher,
        }
    }

    /// Its projection's name: `relay-<source>`, to pass to `status`, `wait_for`, `dead_letters` and `redrive`.
    pub fn name(&self) -> String {
        format!("relay-{}", self.source)
    }

    /// Runs the relay as a projection over `events`, checkpointed in `checkpoints`. Events of different streams
    /// are in flight at once up to `options`' concurrency; one stream's, one at a time in version order.
    pub fn start<S, C>(
        self,
        events: S,
        checkpoints: C,
        options: ProjectionOptions,
    ) -> RunningProjections
    where
        S: EventStore + Clone + 'static,
        C: CheckpointStore + DeadLetterStore + 'static,
    {
        let name = self.name();
        ProjectionRunner::new(events)
            .with_projection(RelayProjection { relay: self, name }, checkpoints, options)
            .start()
    }
}

struct RelayProjection<M, P> {
    relay: Relay<M, P>,
    name: String,
}

#[async_trait]
impl<M: IntegrationMapper, P: Publisher> Projection for RelayProjection<M, P> {
    type Event = M::Event;

    /// A publish again is harmless: consumers de-duplicate by event id, so a rebuild or a reset back publishes
    /// the events again.
    fn idempotent(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// One stream's events in order; different streams' side by side when the options allow.
    fn key(&self, _: &M::Event, record: &RecordedEvent) -> Option<String> {
        Some(record.stream_id.as_str().to_owned())
    }

    async fn handle(&self, event: M::Event, record: &RecordedEvent) -> Result<(), HandlerError> {
        let Some(integration) = self.relay.mapper.map(&event, record)? else {
            return Ok(());
        };
        let message = Outgoing::new(&self.relay.source, &integration, record)?;
        let span = tracing::info_span!(
            "relay_publish",
            relay = %self.name,
            key = %message.key,
            event_id = %record.event_id,
            position = %record.position,
        );
        crate::telemetry::continue_trace(&span, record.metadata.traceparent());
        match self
            .relay
            .publisher
            .publish(&message)
            .instrument(span)
            .await
        {
            Ok(()) => {
                crate::telemetry::record_published(&self.name);
                Ok(())
            }
            Err(error) => {
                crate::telemetry::record_broker_error(&self.name);
                let text = format!("publishing {} failed: {error}", record.event_id);
                Err(match error.is_transient() {
                    true => Box::new(TransientError::new(text)),
                    false => text.into(),
                })
            }
        }
    }
}
