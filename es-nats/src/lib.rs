//! # es-nats
//!
//! The event store as a transactional outbox to NATS JetStream: [`NatsPublisher`] is the
//! [`Publisher`](es_core::integration::Publisher) of es-core's [`Relay`], which publishes the store's events as
//! CloudEvents 1.0 (binary mode) once committed; on the other side, [`consume`] feeds a durable JetStream consumer
//! to an [`IntegrationHandler`] with event-id de-duplication in the consumer's own store transaction (PostgreSQL,
//! SQLite or memory: any [`Inbox`](es_core::integration::Inbox)).
//!
//! - At-least-once with de-duplication: the event id is the JetStream message id (`Nats-Msg-Id`), so the server
//!   drops re-publications within its duplicate window; the relay's checkpoint moves only after the broker
//!   acknowledged, and the consumer drops what the window let through.
//! - Order: a stream's events are published one after another, each acknowledged before the next, so they reach
//!   JetStream in version order. The subject is `<prefix>.<stream category>`.
//! - Broker down: publishing fails as transient, so the relay retries at its longest backoff until the broker is
//!   back, its lag visible in its status; a mapping that fails follows the projection failure policy (dead
//!   letters).
//!
//! ```no_run
//! # use es_core::{DomainEvent, RecordedEvent};
//! # use es_core::projection::{HandlerError, ProjectionOptions};
//! # #[derive(DomainEvent)] #[event(category = "account")] enum AccountEvent { Deposited { amount: u64 } }
//! use es_nats::{IntegrationEvent, IntegrationMapper, NatsPublisher, Relay, RelayConfig};
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
//! # async fn run(store: es_postgres::PgEventStore) -> Result<(), Box<dyn std::error::Error>> {
//! let publisher = NatsPublisher::connect("nats://127.0.0.1:4222", RelayConfig::new("bank")).await?;
//! let relay = Relay::new("bank", PublicAccountEvents, publisher);
//! let running = relay.start(store.clone(), store.clone(), ProjectionOptions::default());
//! # running.shutdown().await;
//! # Ok(()) }
//! ```

mod cloudevent;
mod consumer;
mod publisher;
mod url;

/// The async-nats this crate is built with (`consume` takes its JetStream context): depend on it through here, or on
/// the same version.
pub use async_nats;
pub use consumer::{ConsumeError, ConsumerConfig, consume, consume_reporting};
pub use es_core::integration::{
    CloudEvent, ConsumeProgress, IntegrationEvent, IntegrationHandler, IntegrationMapper, Relay,
};
pub use publisher::{NatsPublisher, RelayConfig, RelayError};
