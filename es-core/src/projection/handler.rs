//! The projection a user writes: its handler and reset.

use async_trait::async_trait;

use crate::event::DomainEvent;
use crate::store::RecordedEvent;

/// Why a handler failed: any error, as text for logs and dead letters.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A read model built from events of type [`Event`](Self::Event), run by a
/// [`ProjectionRunner`](crate::ProjectionRunner) through a [`CheckpointedWorker`](crate::backend::CheckpointedWorker).
///
/// Events whose stored type `Event` does not read (directly or through its [upcasters](crate::evolution)) are skipped
/// before decoding. Delivery is at-least-once: after a crash, events since the last checkpoint are handled again,
/// so make `handle` idempotent (the record's `event_id` identifies each event).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use es_core::{DomainEvent, Projection, RecordedEvent};
/// use es_core::projection::HandlerError;
///
/// #[derive(DomainEvent)]
/// enum AccountEvent { Deposited { amount: u64 } }
///
/// #[derive(Default)]
/// struct Balances(Mutex<HashMap<String, u64>>);
///
/// #[async_trait::async_trait]
/// impl Projection for Balances {
///     type Event = AccountEvent;
///     fn name(&self) -> &str { "balances" }
///     async fn handle(&self, event: AccountEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
///         let AccountEvent::Deposited { amount } = event;
///         *self.0.lock().unwrap().entry(record.stream_id.to_string()).or_default() += amount;
///         Ok(())
///     }
///     async fn reset(&self) -> Result<(), HandlerError> {
///         self.0.lock().unwrap().clear();
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), HandlerError> {
/// let balances = Balances::default();
/// assert_eq!(balances.name(), "balances");
/// assert_eq!(AccountEvent::EVENT_TYPES, ["Deposited"]); // what it reads; everything else is skipped
/// balances.reset().await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The events it reads.
    type Event: DomainEvent;

    /// Its unique name: the key of its checkpoint, dead letters and status.
    fn name(&self) -> &str;

    /// Applies one event to the read model.
    ///
    /// # Errors
    /// Any error: the runner retries with backoff, then applies the projection's
    /// [`FailurePolicy`](crate::projection::FailurePolicy).
    async fn handle(&self, event: Self::Event, record: &RecordedEvent) -> Result<(), HandlerError>;

    /// The stream categories it reads: by default its event type's
    /// [`DomainEvent::CATEGORIES`](crate::DomainEvent::CATEGORIES) (empty: every category). An event of another
    /// category with a type name it knows is not its business, and never reaches (or halts) it.
    fn categories(&self) -> &[&str] {
        Self::Event::CATEGORIES
    }

    /// The key that orders this event: with [`ProjectionOptions::concurrency`](crate::projection::ProjectionOptions) above 1,
    /// events with different keys may be handled at the same time, and events with the same key one after another,
    /// in order. `None` (the default, for any event of a batch) handles the whole batch in order, one event at a
    /// time. A process manager keys by instance; a read model could key by the row it writes.
    fn key(&self, event: &Self::Event, record: &RecordedEvent) -> Option<String> {
        let _ = (event, record);
        None
    }

    /// Empties the read model before a rebuild replays every event. Not implemented, it returns
    /// [`NoReset`](crate::projection::NoReset), and a rebuild is refused
    /// ([`WorkerError::ReplayRefused`](crate::backend::WorkerError::ReplayRefused), nothing changed) unless the
    /// handlers are [`idempotent`](Self::idempotent): a replay onto the rows the model holds would count every
    /// event twice.
    ///
    /// # Errors
    /// Any error; the rebuild stops with it, the checkpoint where it was.
    async fn reset(&self) -> Result<(), HandlerError> {
        Err(Box::new(crate::projection::NoReset))
    }

    /// Whether applying an event it already applied changes nothing (an upsert keyed by the event, a
    /// de-duplication by event id): then a rebuild may replay onto the read model as it is, and a reset may move
    /// the checkpoint back. False by default: a reset back is refused, and a rebuild needs [`reset`](Self::reset).
    fn idempotent(&self) -> bool {
        false
    }
}

/// Whether a projection reading `E` in `categories` (empty: every category) sees the event stored as `event_type`
/// in `stream`: the filter applied before decoding. A type `E` reads directly or through its
/// [`UPCASTERS`](DomainEvent::UPCASTERS) counts.
///
/// ```
/// use es_core::DomainEvent;
/// use es_core::backend::wants;
///
/// #[derive(DomainEvent)]
/// enum OrderEvent { Shipped }
///
/// assert!(wants::<OrderEvent>(&["order"], "order-7", "Shipped"));
/// assert!(!wants::<OrderEvent>(&["order"], "parcel-7", "Shipped"));
/// assert!(wants::<OrderEvent>(&[], "parcel-7", "Shipped"));
/// assert!(!wants::<OrderEvent>(&[], "order-7", "Returned"));
/// ```
pub fn wants<E: DomainEvent>(categories: &[&str], stream: &str, event_type: &str) -> bool {
    (categories.is_empty() || categories.contains(&crate::store::category_of(stream)))
        && crate::event::reads::<E>(event_type)
}

/// Wraps a handler error to say it is temporary (a broker or service that is down): the runner retries the event at
/// its longest backoff until it succeeds or the runner shuts down, and does not apply the failure policy. The
/// checkpoint stays before the event meanwhile, so lag shows the outage.
///
/// ```
/// use es_core::projection::{HandlerError, TransientError};
///
/// let down: HandlerError = Box::new(TransientError::new("broker unreachable"));
/// assert!(down.is::<TransientError>());
/// assert_eq!(down.to_string(), "temporarily failing: broker unreachable");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("temporarily failing: {0}")]
pub struct TransientError(#[source] pub HandlerError);

impl TransientError {
    /// Marks `error` as temporary.
    pub fn new(error: impl Into<HandlerError>) -> Self {
        Self(error.into())
    }
}

/// Turns a handler error into the text and transient flag a worker reports. For worker implementors.
pub fn describe(error: &HandlerError) -> (String, bool) {
    (error.to_string(), error.is::<TransientError>())
}
