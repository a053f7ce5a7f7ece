//! The JetStream publisher: one message per event, acknowledged by the server before the relay's checkpoint moves.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use es_core::integration::{Outgoing, PublishError, Publisher};

use crate::cloudevent::headers;

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

/// Setting the publisher up failed.
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

/// Publishes to JetStream: subject `<prefix>.<stream category>`, the event id as `Nats-Msg-Id` (the server drops
/// re-publications within its duplicate window), CloudEvents attributes as `ce-*` headers.
pub struct NatsPublisher {
    jetstream: jetstream::Context,
    config: RelayConfig,
}

impl std::fmt::Debug for NatsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsPublisher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NatsPublisher {
    /// Connects to `nats_url` (reconnecting forever after a loss) and creates the JetStream stream if missing. A
    /// user and password (`nats://user:secret@host:4222`) or a token (`nats://token@host:4222`) in the URL are
    /// handed to the client as credentials, never logged: the client's connection logs see the bare addresses.
    ///
    /// # Errors
    /// [`RelayError`].
    pub async fn connect(nats_url: &str, config: RelayConfig) -> Result<Self, RelayError> {
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
        Ok(Self { jetstream, config })
    }

    /// Its configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }
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
impl Publisher for NatsPublisher {
    async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
        let category = message
            .key
            .split_once('-')
            .map_or(message.key.as_str(), |(c, _)| c);
        let subject = format!("{}.{}", self.config.subject_prefix, token(category));
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers(message), message.data.clone().into())
            .await
            .map_err(|e| PublishError::transient(e.to_string()))?;
        match tokio::time::timeout(self.config.ack_timeout, ack).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(PublishError::transient(format!(
                "JetStream did not store it: {e}"
            ))),
            Err(_) => Err(PublishError::transient(format!(
                "no acknowledgement within {:?}",
                self.config.ack_timeout
            ))),
        }
    }
}
