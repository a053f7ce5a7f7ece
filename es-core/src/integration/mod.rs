//! Integration events: the event store as a transactional outbox, published to a broker by a [`Relay`] and applied
//! once each by another service's [`IntegrationHandler`].
//!
//! The append commits the events; the relay is a checkpointed projection that maps each domain event to a public
//! [`IntegrationEvent`] (or keeps it private), wraps it in CloudEvents 1.0 attributes ([`Outgoing`]) and hands it to
//! a [`Publisher`] — the one part that speaks to a broker (`es-nats`, `es-kafka`, `es-rabbitmq`). Its checkpoint
//! moves only after the broker acknowledged, so nothing is lost between a commit and a publish; a crash publishes
//! again from the checkpoint, so consumers de-duplicate by the event id ([`Inbox`]).
//!
//! - **Order.** Each message is keyed by its stream id, and a stream's events are published one after another, each
//!   acknowledged before the next. With [`ProjectionOptions::concurrency`](crate::projection::ProjectionOptions)
//!   above 1, events of different streams are in flight at once, each stream's still in version order.
//! - **Broker down.** A [`PublishError::transient`] failure is retried at the projection's backoff until the broker
//!   is back, the relay's lag visible in its status; a mapping that fails follows the projection's failure policy
//!   (dead letters).
//! - **Consumers.** A broker crate's `consume` reads [`CloudEvent`]s and calls [`deliver`]: the event id is recorded
//!   as processed in the consumer's own store transaction ([`Inbox`]: PostgreSQL, SQLite, memory), with the
//!   handler's writes, before the broker is told it was handled; a duplicate is acknowledged without running the
//!   handler.
//!
//! ```
//! use es_core::integration::{IntegrationEvent, IntegrationMapper, Outgoing, PublishError, Publisher, Relay};
//! use es_core::projection::{HandlerError, ProjectionOptions};
//! use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
//! use es_memory::InMemoryEventStore;
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(DomainEvent)]
//! #[event(category = "account")]
//! enum AccountEvent { Deposited { amount: u64 } }
//!
//! struct PublicAccountEvents;
//!
//! impl IntegrationMapper for PublicAccountEvents {
//!     type Event = AccountEvent;
//!     fn map(&self, event: &AccountEvent, _: &RecordedEvent) -> Result<Option<IntegrationEvent>, HandlerError> {
//!         let AccountEvent::Deposited { amount } = event;
//!         Ok(Some(IntegrationEvent::new("bank.account.deposited.v1", serde_json::json!({ "amount": amount }))))
//!     }
//! }
//!
//! /// A broker that keeps what it is given.
//! #[derive(Clone, Default)]
//! struct Kept(Arc<Mutex<Vec<Outgoing>>>);
//!
//! #[es_core::async_trait]
//! impl Publisher for Kept {
//!     async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
//!         self.0.lock().map_err(|_| PublishError::fatal("poisoned"))?.push(message.clone());
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let deposit = NewEvent::from_domain(&AccountEvent::Deposited { amount: 5 }, Default::default())?;
//! let stored = store.append(&StreamId::new("account-1")?, ExpectedVersion::Any, vec![deposit]).await?;
//! let broker = Kept::default();
//! let running = Relay::new("bank", PublicAccountEvents, broker.clone())
//!     .start(store.clone(), store.clone(), ProjectionOptions::default());
//! running.wait_for("relay-bank", stored.last_position, std::time::Duration::from_secs(5)).await?;
//! let published = broker.0.lock().unwrap().clone();
//! assert_eq!((published[0].key.as_str(), published[0].event_type()), ("account-1", "bank.account.deposited.v1"));
//! running.shutdown().await;
//! # Ok(()) }
//! ```

mod cloudevent;
mod inbox;
mod publisher;
mod relay;

pub use cloudevent::{CONTENT_TYPE, CloudEvent, IntegrationEvent, Outgoing, ParseError};
pub use inbox::{ConsumeProgress, Delivery, Inbox, IntegrationHandler, deliver, deliver_retrying};
pub use publisher::{PublishError, Publisher};
pub use relay::{IntegrationMapper, Relay};
