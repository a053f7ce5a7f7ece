//! The consumer side: every queue of the exchange (single active consumer each) feeding an idempotent handler,
//! each message acknowledged after the handler's transaction.

use std::time::Duration;

use es_core::integration::{ConsumeProgress, Inbox, IntegrationHandler, deliver_retrying};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use tokio::sync::watch;

use crate::RabbitConfig;
use crate::headers::parse;
use crate::publisher::open;

/// Consuming failed outside a handler: the broker, or the consumer's store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// RabbitMQ failed, or closed the consumer.
    #[error("RabbitMQ: {0}")]
    Broker(String),
    /// The consumer's store failed.
    #[error(transparent)]
    Store(#[from] es_core::StoreError),
}

/// How long a handler that failed waits before its event is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// How long the consumer waits for a message before it asks the queues how many they hold.
const IDLE: Duration = Duration::from_millis(500);
/// Messages the broker sends ahead of the acknowledgements.
const PREFETCH: u16 = 64;

/// Consumes every queue of `config`'s exchange as `consumer` until `stop` turns true, one message at a time (each
/// queue delivers in order, and a stream's events are all in one queue): for each, records its event id as
/// processed by `consumer` and runs `handler`, in one transaction of `inbox` (the consumer's own store), then
/// acknowledges it. A duplicate is acknowledged without running the handler; a handler that fails is tried again
/// on the same message after a pause. Each queue has a single active consumer: other instances of the same
/// consumer wait as standbys. Publishes its [`ConsumeProgress`] on `progress`; returns how many events the handler
/// applied.
///
/// A message that is not a CloudEvent from a relay is logged (the attribute at fault, never the data) and rejected
/// without requeueing (to the queue's dead-letter exchange, if it has one).
///
/// # Errors
/// [`ConsumeError`] when the broker or the store fails, or the broker closes the consumer (messages not
/// acknowledged are delivered again): call it again.
pub async fn consume<I: Inbox, H: IntegrationHandler<I>>(
    config: &RabbitConfig,
    consumer: &str,
    inbox: &I,
    handler: &H,
    mut stop: watch::Receiver<bool>,
    progress: &watch::Sender<ConsumeProgress>,
) -> Result<u64, ConsumeError> {
    let broker = |e: lapin::Error| ConsumeError::Broker(e.to_string());
    let (_connection, channel) = open(config, false).await.map_err(broker)?;
    channel
        .basic_qos(PREFETCH, Default::default())
        .await
        .map_err(broker)?;
    let mut consumers = Vec::new();
    for n in 0..config.queues {
        consumers.push(
            channel
                .basic_consume(
                    ShortString::from(config.queue(n)),
                    ShortString::from(format!("{consumer}-{n}")),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?,
        );
    }
    let mut deliveries = futures::stream::select_all(consumers);
    let mut now = *progress.borrow();
    let mut applied = 0;
    loop {
        let delivery = tokio::select! {
            _ = stopped(&mut stop) => return Ok(applied),
            next = tokio::time::timeout(IDLE, deliveries.next()) => match next {
                Err(_) => {
                    let mut pending = 0;
                    for n in 0..config.queues {
                        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                        let queue = channel
                            .queue_declare(ShortString::from(config.queue(n)), passive, FieldTable::default())
                            .await
                            .map_err(broker)?;
                        pending += u64::from(queue.message_count());
                    }
                    now = ConsumeProgress::new(now.applied, now.acknowledged, pending);
                    progress.send_replace(now);
                    continue;
                }
                Ok(None) => return Err(ConsumeError::Broker("the broker closed the consumer".into())),
                Ok(Some(Err(e))) => return Err(broker(e)),
                Ok(Some(Ok(delivery))) => delivery,
            },
        };
        match parse(&delivery.properties, &delivery.data) {
            Err(error) => {
                tracing::error!(queue = %delivery.routing_key, %error, "rejected");
                let reject = BasicNackOptions {
                    requeue: false,
                    ..Default::default()
                };
                delivery.acker.nack(reject).await.map_err(broker)?;
            }
            Ok(event) => {
                match deliver_retrying(inbox, handler, consumer, &event, RETRY, &mut stop).await? {
                    None => return Ok(applied),
                    Some(true) => {
                        applied += 1;
                        now.applied += 1;
                    }
                    Some(false) => {}
                }
                delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(broker)?;
            }
        }
        now = ConsumeProgress::new(
            now.applied,
            now.acknowledged + 1,
            now.pending.saturating_sub(1),
        );
        progress.send_replace(now);
    }
}

/// Returns once `stop` says stop (or its sender is gone), holding no borrow of it after.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
