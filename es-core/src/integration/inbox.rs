//! The consumer side: event ids recorded as processed in the consumer's own store transaction, with the handler's
//! writes, so a redelivered or re-published event is applied once.

use async_trait::async_trait;
use tracing::Instrument;

use crate::integration::CloudEvent;
use crate::projection::HandlerError;
use crate::store::{EventId, StoreError};

/// A store that records, in a transaction of its own, which events a consumer has processed: PostgreSQL
/// (`PgEventStore`), SQLite (`SqliteEventStore`) and memory (`InMemoryEventStore`, for tests) implement it.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// The transaction the handler writes through, with the processed mark.
    type Transaction: Send;

    /// Opens a transaction.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn begin(&self) -> Result<Self::Transaction, StoreError>;

    /// Records in `tx` that `consumer` has processed `event_id`: `true` the first time, `false` when it already was
    /// (skip the effect then).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn mark_processed(
        &self,
        tx: &mut Self::Transaction,
        consumer: &str,
        event_id: EventId,
    ) -> Result<bool, StoreError>;

    /// Commits `tx`. Dropping a transaction rolls it back.
    ///
    /// # Errors
    /// [`StoreError::Backend`]: nothing of it was kept.
    async fn commit(&self, tx: Self::Transaction) -> Result<(), StoreError>;
}

/// Handles integration events in the consumer's own transaction of inbox `I`.
///
/// ```
/// use es_core::integration::{CloudEvent, IntegrationHandler};
/// use es_core::projection::HandlerError;
/// use es_memory::{InMemoryEventStore, MemoryTransaction};
///
/// struct Greeter;
///
/// #[es_core::async_trait]
/// impl IntegrationHandler<InMemoryEventStore> for Greeter {
///     async fn handle(&self, _: &mut MemoryTransaction, event: &CloudEvent) -> Result<(), HandlerError> {
///         println!("{} joined", event.subject);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), es_core::StoreError> {
/// # let event = CloudEvent { id: es_core::EventId::new(), source: "crm".into(), event_type: "t".into(),
/// #     subject: "member-1".into(), sequence: 1, time: chrono::Utc::now(), correlation_id: None,
/// #     causation_id: None, traceparent: None, data: serde_json::json!({}) };
/// es_core::integration::deliver(&InMemoryEventStore::new(), &Greeter, "greeter", &event).await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait IntegrationHandler<I: Inbox>: Send + Sync + 'static {
    /// Applies `event`, writing through `tx`. Runs at most once per event id (per consumer) with effect: the id is
    /// recorded in the same transaction.
    ///
    /// # Errors
    /// Any error: the transaction rolls back and the message is delivered again later.
    async fn handle(&self, tx: &mut I::Transaction, event: &CloudEvent)
    -> Result<(), HandlerError>;
}

/// What became of one delivered event.
#[derive(Debug)]
#[non_exhaustive]
pub enum Delivery {
    /// The handler applied it and the transaction committed: acknowledge it.
    Applied,
    /// It was processed before: acknowledge it without effect.
    Duplicate,
    /// The handler failed; nothing was kept: deliver it again later.
    Failed(HandlerError),
}

/// Delivers `event` to `handler` as `consumer`, once: marks its id processed and runs the handler in one
/// transaction of `inbox`, committed before this returns [`Delivery::Applied`]. A broker crate's consumer calls it
/// for each message and acknowledges the message only after it returned `Applied` or `Duplicate`.
///
/// ```
/// use es_core::integration::{CloudEvent, Delivery, IntegrationHandler, deliver};
/// use es_core::projection::HandlerError;
/// use es_memory::{InMemoryEventStore, MemoryTransaction};
/// # use es_core::EventId;
///
/// struct Count(std::sync::atomic::AtomicU32);
///
/// #[es_core::async_trait]
/// impl IntegrationHandler<InMemoryEventStore> for Count {
///     async fn handle(&self, _: &mut MemoryTransaction, _: &CloudEvent) -> Result<(), HandlerError> {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let event = CloudEvent { id: EventId::new(), source: "bank".into(), event_type: "t".into(),
/// #     subject: "account-1".into(), sequence: 1, time: chrono::Utc::now(), correlation_id: None,
/// #     causation_id: None, traceparent: None, data: serde_json::json!({}) };
/// let (inbox, handler) = (InMemoryEventStore::new(), Count(Default::default()));
/// assert!(matches!(deliver(&inbox, &handler, "ledger", &event).await?, Delivery::Applied));
/// assert!(matches!(deliver(&inbox, &handler, "ledger", &event).await?, Delivery::Duplicate));
/// assert_eq!(handler.0.into_inner(), 1);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`StoreError`] when the inbox fails (nothing was kept).
pub async fn deliver<I: Inbox, H: IntegrationHandler<I>>(
    inbox: &I,
    handler: &H,
    consumer: &str,
    event: &CloudEvent,
) -> Result<Delivery, StoreError> {
    let mut tx = inbox.begin().await?;
    if !inbox.mark_processed(&mut tx, consumer, event.id).await? {
        return Ok(Delivery::Duplicate);
    }
    let span = tracing::info_span!(
        "consume",
        consumer,
        id = %event.id,
        event_type = %event.event_type,
        subject = %event.subject,
    );
    crate::telemetry::continue_trace(&span, event.traceparent.as_deref());
    match handler.handle(&mut tx, event).instrument(span).await {
        Err(error) => Ok(Delivery::Failed(error)),
        Ok(()) => {
            inbox.commit(tx).await?;
            Ok(Delivery::Applied)
        }
    }
}

/// [`deliver`] until the handler succeeds: a failed handler is logged and tried again on the same event after
/// `pause`, so a consumer that handles one message at a time keeps its order. Returns whether the event was applied
/// (`false`: it was a duplicate), or `None` once `stop` says stop.
///
/// # Errors
/// [`StoreError`] when the inbox fails (nothing was kept).
pub async fn deliver_retrying<I: Inbox, H: IntegrationHandler<I>>(
    inbox: &I,
    handler: &H,
    consumer: &str,
    event: &CloudEvent,
    pause: std::time::Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<bool>, StoreError> {
    loop {
        match deliver(inbox, handler, consumer, event).await? {
            Delivery::Applied => return Ok(Some(true)),
            Delivery::Duplicate => return Ok(Some(false)),
            Delivery::Failed(error) => {
                tracing::warn!(id = %event.id, %error, "integration handler failed; trying again");
                tokio::select! {
                    // No borrow of `stop` outlives the wait (it would keep this future from being `Send`).
                    _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => return Ok(None),
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// How far a consumer got: a broker crate's `consume` publishes it when it starts and after each message it
/// finished, so a caller can wait until it caught up instead of sleeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumeProgress {
    /// Events the handler applied (duplicates are acknowledged, not counted).
    pub applied: u64,
    /// Messages acknowledged: applied, duplicates, and those that were not CloudEvents.
    pub acknowledged: u64,
    /// Messages the broker still holds for this consumer, as of the last one acknowledged (or the start), where the
    /// broker says.
    pub pending: u64,
    /// Whether the consumer has connected and read the broker's count at least once.
    pub started: bool,
}

impl ConsumeProgress {
    /// Nothing left to read right now: every message published before the last acknowledgement was handled.
    /// `progress.wait_for(ConsumeProgress::caught_up).await`.
    pub fn caught_up(&self) -> bool {
        self.started && self.pending == 0
    }

    /// Progress with `applied`, `acknowledged` and `pending` as given (for broker crates).
    pub fn new(applied: u64, acknowledged: u64, pending: u64) -> Self {
        Self {
            applied,
            acknowledged,
            pending,
            started: true,
        }
    }
}
