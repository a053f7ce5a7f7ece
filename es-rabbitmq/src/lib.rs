//! # es-rabbitmq
//!
//! The event store as a transactional outbox to RabbitMQ: [`RabbitPublisher`] is the
//! [`Publisher`](es_core::integration::Publisher) of es-core's [`Relay`](es_core::integration::Relay), which
//! publishes the store's events once committed; on the other side, [`consume`] feeds the exchange's queues to an
//! [`IntegrationHandler`](es_core::integration::IntegrationHandler), recording each event id as processed in the
//! consumer's own store transaction before it acknowledges the message.
//!
//! - **Order.** RabbitMQ keeps order per queue with one consumer. The publisher routes each stream to one of N
//!   durable queues by the same hash as partitioned projections (`partition_of(stream id, N)`), each queue has a
//!   single active consumer, and the relay publishes one stream's events one after another, each confirmed before
//!   the next. N queues chosen by key, rather than the consistent-hash exchange plugin: no plugin to enable, and the
//!   queue of a stream is known to the publisher (and to an operator) without asking the broker.
//! - **Durability.** Persistent messages in durable queues, `Ok` only after the publisher confirm.
//! - **Duplicates.** RabbitMQ does not de-duplicate: a relay that crashed after a confirm but before its checkpoint
//!   moved publishes again. The consumer drops it by its id (CloudEvents `id`, header `cloudEvents_id`, also the
//!   AMQP `message-id`).
//! - **Broker down.** A publish without a confirm within [`RabbitConfig::ack_timeout`] fails as transient and the
//!   connection is replaced: the relay retries at its longest backoff until the broker is back.
//! - **CloudEvents binary mode.** AMQP 0-9-1 has no application properties: attributes travel as `cloudEvents_*`
//!   headers (the AMQP 1.0 binding's names), `content-type: application/json` in the properties.
//!
//! ```no_run
//! # use es_core::{DomainEvent, RecordedEvent};
//! # use es_core::projection::{HandlerError, ProjectionOptions};
//! # #[derive(DomainEvent)] #[event(category = "account")] enum AccountEvent { Deposited { amount: u64 } }
//! use es_core::integration::{IntegrationEvent, IntegrationMapper, Relay};
//! use es_rabbitmq::{RabbitConfig, RabbitPublisher};
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
//! let config = RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f", "bank");
//! let publisher = RabbitPublisher::connect(config).await?;
//! let running = Relay::new("bank", PublicAccountEvents, publisher)
//!     .start(store.clone(), store.clone(), ProjectionOptions::default().concurrency(16));
//! # running.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod consumer;
mod headers;
mod publisher;

pub use config::RabbitConfig;
pub use consumer::{ConsumeError, consume};
/// The lapin this crate is built with: depend on it through here, or on the same version.
pub use lapin;
pub use publisher::{RabbitPublisher, RabbitSetupError};
