//! The Kafka publisher: an idempotent producer, every record acknowledged by all in-sync replicas.

use std::sync::Arc;

use async_trait::async_trait;
use es_core::integration::{Outgoing, PublishError, Publisher};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::RwLock;

use crate::KafkaConfig;
use crate::headers::headers;

/// Setting the publisher up failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSetupError {
    /// The client could not be created (a setting is wrong).
    #[error("cannot create the Kafka client")]
    Client(#[source] KafkaError),
    /// The topic could not be created or checked.
    #[error("cannot set up Kafka topic `{topic}`: {code}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        code: RDKafkaErrorCode,
    },
}

/// Publishes to one Kafka topic: the stream id as the record key (murmur2 partitioning: one stream's events in one
/// partition, in version order), CloudEvents attributes as `ce_*` headers, the JSON data as the value. The
/// producer is idempotent with `acks=all`: its retries never duplicate nor reorder a partition's records.
pub struct KafkaPublisher {
    producer: RwLock<Arc<FutureProducer>>,
    config: KafkaConfig,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .finish_non_exhaustive()
    }
}

/// The producer settings every publisher starts from.
const PRODUCER: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("partitioner", "murmur2_random"),
    ("linger.ms", "0"),
];

impl KafkaPublisher {
    /// Creates the producer and the topic if missing (`config.partitions`, replication 1 on a single broker:
    /// create it yourself with the replication you need). The broker need not be up for the producer; creating the
    /// topic waits for it up to `config.ack_timeout`.
    ///
    /// # Errors
    /// [`KafkaSetupError`].
    pub async fn connect(config: KafkaConfig) -> Result<Self, KafkaSetupError> {
        let admin: AdminClient<DefaultClientContext> = config
            .client(&[])
            .create()
            .map_err(KafkaSetupError::Client)?;
        let topic = NewTopic::new(&config.topic, config.partitions, TopicReplication::Fixed(1));
        let options =
            AdminOptions::new().operation_timeout(Some(Timeout::After(config.ack_timeout)));
        let results =
            admin
                .create_topics([&topic], &options)
                .await
                .map_err(|e| KafkaSetupError::Topic {
                    topic: config.topic.clone(),
                    code: e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
                })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(KafkaSetupError::Topic { topic, code }),
            }
        }
        let producer = Self::producer(&config)?;
        Ok(Self {
            producer: RwLock::new(producer),
            config,
        })
    }

    fn producer(config: &KafkaConfig) -> Result<Arc<FutureProducer>, KafkaSetupError> {
        let timeout = config.ack_timeout.as_millis().max(1).to_string();
        let mut client = config.client(PRODUCER);
        if !config
            .settings
            .iter()
            .any(|(k, _)| k == "message.timeout.ms")
        {
            client.set("message.timeout.ms", timeout);
        }
        client
            .create()
            .map(Arc::new)
            .map_err(KafkaSetupError::Client)
    }

    /// Its configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// After a fatal producer error, or the broker refusing the producer's id or epoch, a new producer (a new
    /// producer id); the relay publishes the unacknowledged events again from its checkpoint.
    async fn renew(&self, failed: &Arc<FutureProducer>) {
        let mut producer = self.producer.write().await;
        if Arc::ptr_eq(&producer, failed) {
            match Self::producer(&self.config) {
                Ok(fresh) => *producer = fresh,
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the Kafka producer; trying again")
                }
            }
        }
    }
}

/// Whether the broker no longer accepts this producer's id or epoch (fenced after a timeout bumped its epoch, a
/// sequence the broker lost): only a new producer can publish again.
fn lost_identity(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}

/// Whether the broker refuses this record for good (its size, the topic, authorisation): trying again cannot help.
fn refused(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::UnknownTopic
    )
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
        let producer = Arc::clone(&*self.producer.read().await);
        let record = FutureRecord::to(&self.config.topic)
            .key(message.key.as_str())
            .payload(message.data.as_slice())
            .headers(headers(message));
        match producer
            .send(record, Timeout::After(self.config.ack_timeout))
            .await
        {
            Ok(_) => Ok(()),
            Err((error, _)) => {
                let code = error.rdkafka_error_code();
                if producer.client().fatal_error().is_some() || code.is_some_and(lost_identity) {
                    self.renew(&producer).await;
                }
                let text = format!("Kafka did not store it: {error}");
                match error.rdkafka_error_code() {
                    Some(code) if refused(code) => Err(PublishError::fatal(text)),
                    _ => Err(PublishError::transient(text)),
                }
            }
        }
    }
}
