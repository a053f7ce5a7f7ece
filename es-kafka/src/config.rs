//! Where the relay publishes and a consumer reads, and the client settings both use.

use std::time::Duration;

use rdkafka::ClientConfig;

/// A Kafka topic and the client settings to reach it.
///
/// ```
/// use std::time::Duration;
/// use es_kafka::KafkaConfig;
///
/// let config = KafkaConfig::new("127.0.0.1:9092", "bank-events").partitions(12).ack_timeout(Duration::from_secs(10));
/// assert_eq!(config.topic, "bank-events");
/// ```
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: `host:port[,host:port]`.
    pub brokers: String,
    /// The topic: every event of the relay, keyed by stream id.
    pub topic: String,
    /// Partitions of the topic when the publisher creates it (default 6); an existing topic keeps its own.
    pub partitions: i32,
    /// How long one publication may wait for the broker's acknowledgement, retries included (`message.timeout.ms`,
    /// default 10 s): past it the relay tries again later.
    pub ack_timeout: Duration,
    /// Further librdkafka settings, applied last (`security.protocol`, `sasl.*`, `linger.ms`, ...).
    pub settings: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Defaults for `topic` on `brokers`.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            partitions: 6,
            ack_timeout: Duration::from_secs(10),
            settings: Vec::new(),
        }
    }

    /// Partitions for a topic the publisher creates.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// The acknowledgement timeout.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// One more librdkafka setting (a password set here never reaches a log line of ours).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// The client configuration: `bootstrap.servers`, then `defaults` (the producer's or the consumer's), then
    /// `settings`.
    pub(crate) fn client(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            client.set(*key, *value);
        }
        for (key, value) in &self.settings {
            client.set(key, value);
        }
        client
    }
}
