//! The exchange, its queues, and how a stream finds its queue.

use std::time::Duration;

/// The relay's exchange and queues on one RabbitMQ server: a durable direct exchange `<exchange>` and `queues`
/// durable queues `<exchange>.<n>` (n from 0), each with single active consumer; a stream's events always go to
/// queue `partition_of(stream id, queues)`, so they are consumed in version order.
///
/// ```
/// use es_rabbitmq::RabbitConfig;
///
/// let config = RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f", "bank").queues(8);
/// assert_eq!(config.queue_for("account-42"), format!("bank.{}", es_core::store::partition_of("account-42", 8)));
/// ```
#[derive(Clone)]
pub struct RabbitConfig {
    /// `amqp://user:password@host:port/vhost` (never logged: it may hold a password).
    pub url: String,
    /// The exchange; also the prefix of its queues.
    pub exchange: String,
    /// How many queues share the streams (default 4). Changing it moves streams to other queues: drain them first.
    pub queues: u32,
    /// How long one publication may wait for the broker's confirm (default 5 s): past it the relay tries again
    /// later, on a new connection.
    pub ack_timeout: Duration,
}

impl std::fmt::Debug for RabbitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitConfig")
            .field("exchange", &self.exchange)
            .field("queues", &self.queues)
            .field("ack_timeout", &self.ack_timeout)
            .finish_non_exhaustive()
    }
}

impl RabbitConfig {
    /// Defaults for `exchange` on the server at `url`.
    pub fn new(url: impl Into<String>, exchange: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: exchange.into(),
            queues: 4,
            ack_timeout: Duration::from_secs(5),
        }
    }

    /// How many queues.
    pub fn queues(mut self, queues: u32) -> Self {
        self.queues = queues.max(1);
        self
    }

    /// The confirm timeout.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// The queue of `stream`'s events.
    pub fn queue_for(&self, stream: &str) -> String {
        self.queue(es_core::store::partition_of(stream, self.queues))
    }

    /// Queue `n`.
    pub fn queue(&self, n: u32) -> String {
        format!("{}.{n}", self.exchange)
    }
}
