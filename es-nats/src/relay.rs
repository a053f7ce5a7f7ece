//! The relay: a checkpointed projection that publishes integration events to JetStream.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use es_core::projection::{
    CheckpointStore, DeadLetterStore, HandlerError, ProjectionOptions, RunningProjections,
    TransientError,
};
use es_core::{DomainEvent, EventStore, Projection, ProjectionRunner, RecordedEvent};
use tracing::Instrument;

use crate::cloudevent::{IntegrationEvent, headers};

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

/// Where and how the relay publishes.
///
/// ```
/// use std::time::Duration;
/// use es_nats::RelayConfig;
///
/// let config = RelayConfig::new("bank").stream("BANK_EVENTS").duplicate_window(Duration::from_secs(600));
/// assert_eq!(config.subject_prefix, "bank");
/// ```
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Subjects are `<subject_prefix>.<stream category>`; also the CloudEvents source and the relay's name.
    pub subject_prefix: String,
    /// The JetStream stream capturing `<subject_prefix>.>`, created if missing.
    pub stream: String,
    /// How long JetStream remembers message ids to drop re-publications (default 2 minutes).
    pub duplicate_window: Duration,
    /// How long to wait for the broker's acknowledgement of one publication (default 5 s).
    pub ack_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for `subject_prefix`: stream `<PREFIX>_EVENTS`, 2-minute duplicate window, 5 s ack timeout.
    pub fn new(subject_prefix: impl Into<String>) -> Self {
        let subject_prefix = subject_prefix.into();
        Self {
            stream: format!(
                "{}_EVENTS",
                subject_prefix.to_uppercase().replace(['.', '-'], "_")
            ),
            subject_prefix,
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(5),
        }
    }

    /// The JetStream stream.
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The duplicate window.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// The acknowledgement timeout.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }
}

/// Setting the relay up failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The JetStream stream could not be created or read.
    #[error("cannot set up JetStream stream `{stream}`")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Publishes the store's events, mapped, to JetStream; run it with [`Relay::start`].
pub struct Relay<M> {
    mapper: M,
    jetstream: jetstream::Context,
    config: RelayConfig,
}

impl<M> std::fmt::Debug for Relay<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<M: IntegrationMapper> Relay<M> {
    /// Connects to `nats_url` (reconnecting forever after a loss) and creates the JetStream stream if missing. A
    /// user and password (`nats://user:secret@host:4222`) or a token (`nats://token@host:4222`) in the URL are
    /// handed to the client as credentials, never logged: the client's connection logs see the bare addresses.
    ///
    /// # Errors
    /// [`RelayError`].
    pub async fn connect(
        nats_url: &str,
        mapper: M,
        config: RelayConfig,
    ) -> Result<Self, RelayError> {
        let (servers, credentials) = crate::url::split_credentials(nats_url);
        // Credentials go to the client apart from the addresses, which its connection logging prints.
        let options = match credentials {
            Some(crate::url::Credentials::UserPassword(user, password)) => {
                async_nats::ConnectOptions::new().user_and_password(user, password)
            }
            Some(crate::url::Credentials::Token(token)) => {
                async_nats::ConnectOptions::new().token(token)
            }
            None => async_nats::ConnectOptions::new(),
        };
        let client = options
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(servers.as_str())
            .await
            .map_err(|e| RelayError::Connect(Box::new(e)))?;
        let jetstream = jetstream::new(client);
        jetstream
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                duplicate_window: config.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| RelayError::Stream {
                stream: config.stream.clone(),
                source: Box::new(e),
            })?;
        Ok(Self {
            mapper,
            jetstream,
            config,
        })
    }

    /// Runs the relay as a projection named `relay-<subject prefix>` (`relay-bank` for prefix `bank`: the name to
    /// pass to `status`, `wait_for`, `dead_letters` and `redrive` of the returned [`RunningProjections`]),
    /// checkpointed in `checkpoints`.
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
        let name = format!("relay-{}", self.config.subject_prefix);
        let projection = RelayProjection { relay: self, name };
        ProjectionRunner::new(events)
            .with_projection(projection, checkpoints, options)
            .start()
    }
}

struct RelayProjection<M> {
    relay: Relay<M>,
    name: String,
}

/// A subject token from a stream category: anything but letters, digits, `_` and `-` becomes `_`.
fn token(category: &str) -> String {
    category
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait]
impl<M: IntegrationMapper> Projection for RelayProjection<M> {
    type Event = M::Event;

    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, event: M::Event, record: &RecordedEvent) -> Result<(), HandlerError> {
        let Some(integration) = self.relay.mapper.map(&event, record)? else {
            return Ok(());
        };
        let config = &self.relay.config;
        let subject = format!(
            "{}.{}",
            config.subject_prefix,
            token(record.stream_id.category())
        );
        let headers = headers(&config.subject_prefix, &integration, record);
        let body = serde_json::to_vec(&integration.data)?;
        let transient = |e: String| -> HandlerError { Box::new(TransientError::new(e)) };
        let span = tracing::info_span!(
            "relay_publish",
            relay = %self.name,
            %subject,
            event_id = %record.event_id,
            position = %record.position,
        );
        es_core::telemetry::continue_trace(&span, record.metadata.traceparent());
        let published = match self
            .relay
            .jetstream
            .publish_with_headers(subject, headers, body.into())
            .instrument(span.clone())
            .await
        {
            Err(e) => Err(transient(format!(
                "publishing {} failed: {e}",
                record.event_id
            ))),
            Ok(ack) => match tokio::time::timeout(config.ack_timeout, ack)
                .instrument(span)
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(transient(format!(
                    "JetStream did not store {}: {e}",
                    record.event_id
                ))),
                Err(_) => Err(transient(format!(
                    "no acknowledgement for {} within {:?}",
                    record.event_id, config.ack_timeout
                ))),
            },
        };
        match &published {
            Ok(()) => es_core::telemetry::record_published(&self.name),
            Err(_) => es_core::telemetry::record_broker_error(&self.name),
        }
        published
    }
}
