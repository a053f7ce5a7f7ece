//! # es-nats
//!
//! The event store as a transactional outbox: the append commits the events, and a checkpointed [`Relay`] publishes
//! them to NATS JetStream as CloudEvents 1.0 (binary mode), so other services never read our tables and nothing is
//! lost between a commit and a publish. On the other side, [`consume`] feeds a durable JetStream consumer to an
//! [`IntegrationHandler`] with event-id de-duplication in the consumer's own PostgreSQL transaction.
//!
//! - Domain events stay private: an [`IntegrationMapper`] turns each into a public [`IntegrationEvent`] (or drops it).
//! - At-least-once with de-duplication: the event id is the JetStream message id (`Nats-Msg-Id`), so the server
//!   drops re-publications within its duplicate window; the relay's checkpoint moves only after the broker
//!   acknowledged.
//! - Order: one publisher, one event at a time, each acknowledged before the next: a stream's events reach
//!   JetStream in version order. The subject is `<prefix>.<stream category>`.
//! - Broker down: publishing fails as a [`TransientError`](es_core::projection::TransientError), so the relay retries at its
//!   longest backoff until the broker is back, its lag visible in its status; a mapping that fails follows the
//!   projection failure policy (dead letters).
//!
//! ```no_run
//! # use es_core::{DomainEvent, RecordedEvent};
//! # use es_core::projection::{HandlerError, ProjectionOptions};
//! # #[derive(DomainEvent)] enum AccountEvent { Deposited { amount: u64 } }
//! use es_nats::{IntegrationEvent, IntegrationMapper, Relay, RelayConfig};
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
//! let relay = Relay::connect("nats://127.0.0.1:4222", PublicAccountEvents, RelayConfig::new("bank")).await?;
//! let running = relay.start(store.clone(), store.clone(), ProjectionOptions::default());
//! # running.shutdown().await;
//! # Ok(()) }
//! ```

mod cloudevent;
mod consumer;
mod relay;
mod url;

/// The async-nats this crate is built with (`consume` takes its JetStream context): depend on it through here, or on
/// the same version.
pub use async_nats;
pub use cloudevent::{CloudEvent, IntegrationEvent};
pub use consumer::{
    ConsumeError, ConsumeProgress, ConsumerConfig, IntegrationHandler, consume, consume_reporting,
};
pub use relay::{IntegrationMapper, Relay, RelayConfig, RelayError};
