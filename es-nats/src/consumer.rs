//! The consumer side: a durable JetStream consumer feeding an idempotent handler.

use std::time::Duration;
use tracing::Instrument;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use async_trait::async_trait;
use es_core::projection::HandlerError;
use es_postgres::PgEventStore;
use futures::StreamExt;
use sqlx::PgConnection;
use tokio::sync::watch;

use crate::cloudevent::{CloudEvent, parse};

/// Handles integration events in the consumer's own database transaction.
#[async_trait]
pub trait IntegrationHandler: Send + Sync + 'static {
    /// Applies `event`, writing through `tx`. Called at most once per event id (per consumer) with effect: the id is
    /// recorded in the same transaction.
    ///
    /// # Errors
    /// Any error: the transaction rolls back and the message is redelivered after a pause.
    async fn handle(&self, tx: &mut PgConnection, event: &CloudEvent) -> Result<(), HandlerError>;
}

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
    /// The database failed.
    #[error(transparent)]
    Store(#[from] es_core::StoreError),
}

/// How far a consumer got: published by [`consume_reporting`] when it starts and after each message it finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumeProgress {
    /// Events the handler applied (duplicates are acknowledged, not counted).
    pub applied: u64,
    /// Messages acknowledged: applied, duplicates, and terminated ones that were not CloudEvents.
    pub acknowledged: u64,
    /// Messages the broker still holds for this consumer, as of the last one acknowledged (or the start).
    pub pending: u64,
    /// Whether the consumer has connected and read the broker's count at least once.
    pub started: bool,
}

impl ConsumeProgress {
    /// Nothing left to read right now: every message published before the last acknowledgement was handled.
    /// Tests and start-up checks wait for this instead of sleeping:
    /// `progress.wait_for(ConsumeProgress::caught_up).await`.
    pub fn caught_up(&self) -> bool {
        self.started && self.pending == 0
    }
}

/// Reads messages of `config` one at a time (so each stream's events are handled in order) until `stop` turns true:
/// for each, records its event id as processed by `config.durable` and runs `handler`, in one transaction of
/// `store`'s database; a duplicate (a re-publication outside the broker's window, a redelivery) is acknowledged
/// without running the handler. Returns how many events the handler applied.
///
/// # Errors
/// [`ConsumeError`] when the broker or the database fails (messages not acknowledged are redelivered later).
pub async fn consume<H: IntegrationHandler>(
    jetstream: &jetstream::Context,
    config: &ConsumerConfig,
    store: &PgEventStore,
    handler: &H,
    stop: watch::Receiver<bool>,
) -> Result<u64, ConsumeError> {
    let (progress, _) = watch::channel(ConsumeProgress::default());
    consume_reporting(jetstream, config, store, handler, stop, &progress).await
}

/// [`consume`], publishing its [`ConsumeProgress`] on `progress`, so a caller can wait until it has caught up:
///
/// ```no_run
/// # use es_nats::{ConsumeProgress, ConsumerConfig, IntegrationHandler, consume_reporting};
/// # async fn run(jetstream: es_nats::async_nats::jetstream::Context, config: ConsumerConfig,
/// #     store: es_postgres::PgEventStore, handler: impl IntegrationHandler) {
/// let (progress, mut watching) = tokio::sync::watch::channel(ConsumeProgress::default());
/// let (_stop, stopped) = tokio::sync::watch::channel(false);
/// tokio::spawn(async move { consume_reporting(&jetstream, &config, &store, &handler, stopped, &progress).await });
/// watching.wait_for(ConsumeProgress::caught_up).await.ok(); // everything published so far is handled
/// # }
/// ```
///
/// # Errors
/// As [`consume`].
pub async fn consume_reporting<H: IntegrationHandler>(
    jetstream: &jetstream::Context,
    config: &ConsumerConfig,
    store: &PgEventStore,
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
    let mut now = ConsumeProgress {
        pending: consumer.cached_info().num_pending
            + u64::try_from(consumer.cached_info().num_ack_pending).unwrap_or(u64::MAX),
        started: true,
        ..*progress.borrow()
    };
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
        let mut tx = store
            .pool()
            .begin()
            .await
            .map_err(|e| ConsumeError::Broker(format!("database: {e}")))?;
        if store
            .mark_processed(&mut tx, &config.durable, event.id)
            .await?
        {
            let span = tracing::info_span!(
                "consume",
                durable = %config.durable,
                id = %event.id,
                event_type = %event.event_type,
                subject = %event.subject,
            );
            es_core::telemetry::continue_trace(&span, event.traceparent.as_deref());
            if let Err(error) = handler.handle(&mut tx, &event).instrument(span).await {
                tracing::warn!(id = %event.id, %error, "integration handler failed; redelivering later");
                drop(tx);
                message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                    .await
                    .map_err(|e| broker(&e))?;
                continue;
            }
            applied += 1;
            now.applied += 1;
        }
        tx.commit()
            .await
            .map_err(|e| ConsumeError::Broker(format!("database: {e}")))?;
        message.ack().await.map_err(|e| broker(&e))?;
        now.acknowledged += 1;
        now.pending = message.info().map_or(now.pending, |info| info.pending);
        progress.send_replace(now);
    }
}
