//! # es-postgres
//!
//! [`PgEventStore`]: the `es-core` event, snapshot and checkpoint stores on PostgreSQL 13 or newer, through sqlx.
//! It passes the same conformance suite as the in-memory store, and its global order never lets a reader skip an
//! event that commits late (see [`PgEventStore`] for how, and what it asks of operators).
//!
//! ```no_run
//! use es_core::{Metadata, Repository};
//! use es_postgres::PgEventStore;
//! # use es_core::{Aggregate, DomainEvent};
//! # #[derive(Default, Clone)] struct Counter;
//! # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
//! # impl Aggregate for Counter {
//! #     const CATEGORY: &'static str = "counter";
//! #     type Event = CounterEvent; type Command = (); type Error = std::convert::Infallible;
//! #     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
//! #     fn apply(self, _: &CounterEvent) -> Self { self }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgEventStore::connect("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").await?;
//! store.migrate().await?; // creates schema `es` and its tables; safe to run on every start
//! let counters = Repository::<Counter, _>::new(store);
//! counters.execute("visits", &(), Metadata::new()).await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls-rustls` | no | TLS connections (rustls with the webpki roots) |
#![doc(test(attr(deny(warnings))))]

mod append;
mod browse;
mod catalog;
mod checkpoints;
mod control;
mod dead_letters;
mod documents;
mod error;
mod group_commit;
mod live;
mod multi;
mod processes;
mod projection;
mod query;
mod rows;
mod schema;
mod snapshots;
mod store;
mod subscription;

pub use error::{PgError, PgSetupError};
pub use es_core::control::{Migration, MigrationStatus, StreamSummary};
pub use projection::{
    DEFAULT_LEASE, PartitionStatus, PgPartitions, PgProjection, PgProjectionWorker, PgTransaction,
    ReadModel, partition_of,
};
pub use schema::SchemaName;
/// The sqlx this crate is built with (handlers of a [`PgProjection`] name `sqlx::PgConnection`): depend on it through
/// here, or on the same version.
pub use sqlx;
pub use store::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_COUNT_CAP, DEFAULT_STREAM_LOCK_TIMEOUT, PgEventStore,
    PgEventStoreBuilder,
};
