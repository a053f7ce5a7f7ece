//! How a relay speaks to a broker.

use async_trait::async_trait;

use crate::integration::Outgoing;

/// Publishes one keyed CloudEvent to a broker and returns once the broker took responsibility for it (an
/// acknowledgement, a publisher confirm) or refused it. The relay calls it for one stream's events one after
/// another; for different streams concurrently when its projection options allow.
///
/// Implement it for a broker the framework does not ship: `es-nats`, `es-kafka` and `es-rabbitmq` do for theirs. The
/// [module documentation](crate::integration) has an example.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `message`; `Ok` only once the broker has stored it.
    ///
    /// # Errors
    /// [`PublishError`]: [`transient`](PublishError::transient) when trying again later may succeed (the broker is
    /// down or slow), fatal otherwise (the broker refuses this message: too large, not authorised).
    async fn publish(&self, message: &Outgoing) -> Result<(), PublishError>;
}

/// A message the broker did not take. Its text names the message by event id, never by its data.
///
/// ```
/// use es_core::integration::PublishError;
///
/// let error = PublishError::transient("no acknowledgement within 5s");
/// assert!(error.is_transient());
/// assert!(!PublishError::fatal("message too large").is_transient());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PublishError {
    message: String,
    transient: bool,
}

impl PublishError {
    /// A failure that may pass: the relay retries it at its longest backoff for as long as it lasts, without
    /// dead-lettering the event.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }

    /// A refusal of this message: the relay's failure policy applies (retries, then a dead letter or a halt).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }

    /// Whether it may pass by itself.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}
