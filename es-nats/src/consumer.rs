//! The consumer side: a durable JetStream consumer feeding an idempotent handler.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use es_core::integration::{ConsumeProgress, Delivery, Inbox, IntegrationHandler, deliver};
use futures::StreamExt;
use tokio::sync::watch;

use crate::cloudevent::parse;

/// Which messages a consumer reads, and as whom.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The JetStream stream.
    pub stream: String,
    /// The durable consumer's name (also the de-duplication key's consumer name).
    pub durable: String,
    /// The subjects, e.g. `bank.account` or `bank.>`.
    pub filter_subject: String,
}

/// Consuming failed outside a handler (the broker or the database).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// JetStream failed.
    #[error("JetStream: {0}")]
    Broker(String),
    /// The consumer's store failed.
    #[error(transparent)]
    Store(#[from] es_core::StoreError),
}

/// Reads messages of `config` one at a time (so each stream's events are handled in order) until `stop` turns true:
/// for each, records its event id as processed by `config.durable` and runs `handler`, in one transaction of
/// `inbox` (the consumer's own store: PostgreSQL, SQLite or memory); a duplicate (a re-publication outside the broker's window, a redelivery) is acknowledged
/// without running the handler. Returns how many events the handler applied.
///
/// # Errors
/// [`ConsumeError`] when the broker or the database fails (messages not acknowledged are redelivered later).
pub async fn consume<I: Inbox, H: IntegrationHandler<I>>(
    jetstream: &jetstream::Context,
    config: &ConsumerConfig,
    inbox: &I,
    handler: &H,
    stop: watch::Receiver<bool>,
) -> Result<u64, ConsumeError> {
    let (progress, _) = watch::channel(ConsumeProgress::default());
    consume_reporting(jetstream, config, inbox, handler, stop, &progress).await
}

/// [`consume`], publishing its [`ConsumeProgress`] on `progress`, so a caller can wait until it has caught up:
///
/// ```no_run
/// # use es_nats::{ConsumeProgress, ConsumerConfig, IntegrationHandler, consume_reporting};
/// # use es_postgres::PgEventStore;
/// # async fn run(jetstream: es_nats::async_nats::jetstream::Context, config: ConsumerConfig,
/// #     store: PgEventStore, handler: impl IntegrationHandler<PgEventStore>) {
/// let (progress, mut watching) = tokio::sync::watch::channel(ConsumeProgress::default());
/// let (_stop, stopped) = tokio::sync::watch::channel(false);
/// tokio::spawn(async move { consume_reporting(&jetstream, &config, &store, &handler, stopped, &progress).await });
/// watching.wait_for(ConsumeProgress::caught_up).await.ok(); // everything published so far is handled
/// # }
/// ```
///
/// # Errors
/// As [`consume`].
pub async fn consume_reporting<I: Inbox, H: IntegrationHandler<I>>(
    jetstream: &jetstream::Context,
    config: &ConsumerConfig,
    inbox: &I,
    handler: &H,
    mut stop: watch::Receiver<bool>,
    progress: &watch::Sender<ConsumeProgress>,
) -> Result<u64, ConsumeError> {
    let broker = |e: &dyn std::fmt::Display| ConsumeError::Broker(e.to_string());
    let stream = jetstream
        .get_stream(&config.stream)
        .await
        .map_err(|e| broker(&e))?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &config.durable,
            pull::Config {
                durable_name: Some(config.durable.clone()),
                filter_subject: config.filter_subject.clone(),
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 1,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| broker(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| broker(&e))?;
    let mut applied = 0;
    let before = *progress.borrow();
    let mut now = ConsumeProgress::new(
        before.applied,
        before.acknowledged,
        consumer.cached_info().num_pending
            + u64::try_from(consumer.cached_info().num_ack_pending).unwrap_or(u64::MAX),
    );
    progress.send_replace(now);
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return Ok(applied),
            next = messages.next() => match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(%error, "JetStream consumer error; continuing");
                    continue;
                }
                None => return Ok(applied),
            },
        };
        let event = match parse(message.headers.as_ref(), &message.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(subject = %message.subject, %error, "not a CloudEvent from the relay; terminated");
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| broker(&e))?;
                now.acknowledged += 1;
                now.pending = message.info().map_or(now.pending, |info| info.pending);
                progress.send_replace(now);
                continue;
            }
        };
        match deliver(inbox, handler, &config.durable, &event).await? {
            Delivery::Failed(error) => {
                tracing::warn!(id = %event.id, %error, "integration handler failed; redelivering later");
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                    .await
                    .map_err(|e| broker(&e))?;
                continue;
            }
            Delivery::Applied => {
                applied += 1;
                now.applied += 1;
            }
            _ => {}
        }
        message.ack().await.map_err(|e| broker(&e))?;
        now.acknowledged += 1;
        now.pending = message.info().map_or(now.pending, |info| info.pending);
        progress.send_replace(now);
    }
}
