//! The consumer side: a consumer group member feeding an idempotent handler, committing offsets after the handler's
//! transaction.

use std::sync::Arc;
use std::time::Duration;

use es_core::integration::{ConsumeProgress, Inbox, IntegrationHandler, deliver_retrying};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::util::Timeout;
use tokio::sync::watch;

use crate::KafkaConfig;
use crate::headers::parse;

/// Consuming failed outside a handler: the broker, or the consumer's store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// Kafka failed.
    #[error("Kafka: {0}")]
    Broker(#[from] KafkaError),
    /// The consumer's store failed.
    #[error(transparent)]
    Store(#[from] es_core::StoreError),
}

/// How long a handler that failed waits before its event is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// How long the consumer waits for a record before it asks for the topic's end (to report `pending`; between two
/// idle moments it counts down by the records it handled).
const IDLE: Duration = Duration::from_millis(500);

/// The consumer settings every consumer starts from: offsets committed by us, after the handler; a fetch waits at
/// most 100 ms for new records (a broker that holds every fetch its whole wait, as Tansu does, adds half of it to
/// each event's latency).
const CONSUMER: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "100"),
    ("enable.auto.commit", "false"),
    ("auto.offset.reset", "earliest"),
    ("isolation.level", "read_committed"),
];

/// Reads `config.topic` as a member of consumer group `group` until `stop` turns true, one record at a time (so
/// each partition's records, and so each stream's events, are handled in order): for each, records its event id as
/// processed by `group` and runs `handler`, in one transaction of `inbox` (the consumer's own store), then commits
/// the record's offset. A duplicate (a re-publication after a relay crash, a redelivery after ours) is committed
/// without running the handler; a handler that fails is tried again on the same record after a pause. Publishes
/// its [`ConsumeProgress`] on `progress`; returns how many events the handler applied.
///
/// A record that is not a CloudEvent from a relay is logged (the attribute at fault, never the data) and skipped.
///
/// # Errors
/// [`ConsumeError`] when the broker or the store fails (records not committed are read again later).
pub async fn consume<I: Inbox, H: IntegrationHandler<I>>(
    config: &KafkaConfig,
    group: &str,
    inbox: &I,
    handler: &H,
    mut stop: watch::Receiver<bool>,
    progress: &watch::Sender<ConsumeProgress>,
) -> Result<u64, ConsumeError> {
    let mut client = config.client(CONSUMER);
    client.set("group.id", group);
    let consumer: Arc<StreamConsumer> = Arc::new(client.create()?);
    consumer.subscribe(&[config.topic.as_str()])?;
    let before = *progress.borrow();
    let mut now = before;
    let mut applied = 0;
    loop {
        let message = tokio::select! {
            _ = stopped(&mut stop) => return Ok(applied),
            next = tokio::time::timeout(IDLE, consumer.recv()) => match next {
                Err(_) => {
                    // Idle: the end of every assigned partition, asked of the broker.
                    // Asking blocks a thread for up to a round trip per partition: not this task's.
                    let (asking, topic) = (Arc::clone(&consumer), config.topic.clone());
                    let answer = tokio::task::spawn_blocking(move || pending(&asking, &topic)).await;
                    if let Ok(Some(pending)) = answer {
                        now = ConsumeProgress::new(now.applied, now.acknowledged, pending);
                        progress.send_replace(now);
                    }
                    continue;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Kafka consumer error; continuing");
                    continue;
                }
                Ok(Ok(message)) => message,
            },
        };
        match parse(message.headers(), message.payload().unwrap_or_default()) {
            Err(error) => {
                tracing::error!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    %error,
                    "skipped"
                );
            }
            Ok(event) => {
                match deliver_retrying(inbox, handler, group, &event, RETRY, &mut stop).await? {
                    None => return Ok(applied),
                    Some(true) => {
                        applied += 1;
                        now.applied += 1;
                    }
                    Some(false) => {}
                }
            }
        }
        consumer.commit_message(&message, CommitMode::Async)?;
        now.acknowledged += 1;
        now = ConsumeProgress::new(now.applied, now.acknowledged, now.pending.saturating_sub(1));
        progress.send_replace(now);
    }
}

/// Records after this consumer's position in its assigned partitions, asking the broker for each one's end. `None`
/// before the group assigned any partition.
fn pending(consumer: &StreamConsumer, topic: &str) -> Option<u64> {
    let positions = consumer.position().ok()?;
    let assigned = positions.elements_for_topic(topic);
    if assigned.is_empty() {
        return None;
    }
    let mut pending = 0;
    for partition in assigned {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition.partition(), Timeout::After(IDLE))
            .ok()?;
        let position = partition.offset().to_raw().filter(|p| *p >= 0).unwrap_or(0);
        pending += u64::try_from(high - position).unwrap_or(0);
    }
    Some(pending)
}

/// Returns once `stop` says stop (or its sender is gone), holding no borrow of it after.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
