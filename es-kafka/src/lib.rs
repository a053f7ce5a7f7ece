//! # es-kafka
//!
//! The event store as a transactional outbox to Kafka: [`KafkaPublisher`] is the
//! [`Publisher`](es_core::integration::Publisher) of es-core's [`Relay`](es_core::integration::Relay), which
//! publishes the store's events once committed; on the other side, [`consume`] feeds a consumer group to an
//! [`IntegrationHandler`](es_core::integration::IntegrationHandler), recording each event id as processed in the
//! consumer's own store transaction before it commits the offset.
//!
//! - **Order.** The record key is the stream id: one stream's events go to one partition, and the relay publishes
//!   them one after another, each acknowledged before the next. The producer is idempotent (`enable.idempotence`,
//!   `acks=all`): its own retries neither duplicate nor reorder.
//! - **Duplicates.** Kafka does not de-duplicate by our event id: a relay that crashed after the broker stored a
//!   record but before its checkpoint moved publishes it again. The consumer drops it by its id (CloudEvents `id`,
//!   header `ce_id`).
//! - **Broker down.** A record not acknowledged within [`KafkaConfig::ack_timeout`] fails as transient: the relay
//!   retries it at its longest backoff until the broker is back, its lag visible in its status.
//! - **CloudEvents binary mode.** Attributes as `ce_*` headers, `content-type: application/json`, the data as the
//!   record value.
//!
//! ```no_run
//! # use es_core::{DomainEvent, RecordedEvent};
//! # use es_core::projection::{HandlerError, ProjectionOptions};
//! # #[derive(DomainEvent)] #[event(category = "account")] enum AccountEvent { Deposited { amount: u64 } }
//! use es_core::integration::{IntegrationEvent, IntegrationMapper, Relay};
//! use es_kafka::{KafkaConfig, KafkaPublisher};
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
//! let publisher = KafkaPublisher::connect(KafkaConfig::new("127.0.0.1:9092", "bank-events")).await?;
//! let running = Relay::new("bank", PublicAccountEvents, publisher)
//!     .start(store.clone(), store.clone(), ProjectionOptions::default().concurrency(16));
//! # running.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod consumer;
mod headers;
mod publisher;

pub use config::KafkaConfig;
pub use consumer::{ConsumeError, consume};
pub use publisher::{KafkaPublisher, KafkaSetupError};
/// The rdkafka this crate is built with: depend on it through here, or on the same version.
pub use rdkafka;
