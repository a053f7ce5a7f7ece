//! # es-core
//!
//! The core of the event-sourcing framework: aggregates as pure deciders, typed domain events with stable names and
//! schema versions, the [`EventStore`] contract every backend implements, and the [`Repository`] that runs commands
//! with optimistic concurrency. No database code lives here: `es-memory`, `es-postgres` and `es-sqlite` implement the traits.
//!
//! ## Quick start
//! ```
//! use es_core::{Aggregate, DomainEvent, Metadata, Repository};
//! use es_memory::InMemoryEventStore;
//!
//! #[derive(Default, Debug, Clone)]
//! struct Account { open: bool, balance: u64 }
//!
//! #[derive(Debug, PartialEq, DomainEvent)]
//! #[event(aggregate = Account)]
//! enum AccountEvent { Opened, Deposited { amount: u64 } }
//!
//! enum AccountCommand { Open, Deposit(u64) }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! enum AccountError { #[error("account is not open")] NotOpen }
//!
//! impl Aggregate for Account {
//!     const CATEGORY: &'static str = "account";
//!     type Event = AccountEvent;
//!     type Command = AccountCommand;
//!     type Error = AccountError;
//!
//!     fn handle(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
//!         match command {
//!             AccountCommand::Open => Ok(vec![AccountEvent::Opened]),
//!             AccountCommand::Deposit(_) if !self.open => Err(AccountError::NotOpen),
//!             AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited { amount: *amount }]),
//!         }
//!     }
//!
//!     fn apply(mut self, event: &AccountEvent) -> Self {
//!         match event {
//!             AccountEvent::Opened => self.open = true,
//!             AccountEvent::Deposited { amount } => self.balance += amount,
//!         }
//!         self
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let accounts = Repository::<Account, _>::new(InMemoryEventStore::new());
//! accounts.execute("alice", &AccountCommand::Open, Metadata::new()).await?;
//! let done = accounts.execute("alice", &AccountCommand::Deposit(100), Metadata::new()).await?;
//! assert_eq!(done.state.balance, 100);
//! assert!(accounts.execute("bob", &AccountCommand::Deposit(1), Metadata::new()).await.is_err());
//! # Ok(()) }
//! ```
//!
//! ## Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `derive` | yes | `#[derive(DomainEvent)]` |
//! | `testing` | no | the `testing` module: given/when/then for aggregates, and the store conformance suite |
//!
//! ## The guide
//! [`guide`] walks from a first aggregate to operating it in production: aggregates and tests, stores, projections
//! and read models, process managers, integration events, operating it, evolution, performance.
//!
//! ## Where things are
//! The crate root holds what a first application touches; everything else sits in a module per concept, each with
//! an overview:
//!
//! | module | what it is about |
//! |---|---|
//! | [`aggregate`] | deciders, the [`Repository`] that runs commands, snapshots |
//! | [`store`] | the [`EventStore`] contract: streams, versions, positions, appends, reads, subscriptions, errors |
//! | [`evolution`] | upcasters (schema history of event types), the pre-deploy schema check |
//! | [`projection`] | read models from the global stream: runner, checkpoints, failure policies, dead letters |
//! | [`process`] | process managers (also called sagas): commands and timers across aggregates |
//! | [`integration`] | integration events: the relay to a broker (the store is the outbox), the inbox on the consuming side |
//! | [`control`] | the control plane: projection reports and requests across processes, what an operator reads |
//! | [`telemetry`] | metric names and traces |
//! | `testing` | given/when/then for aggregates and the store conformance suites (feature `testing`) |
//! | [`backend`] | what an event-store backend implements against (validation, the load fast path, workers) |
//!
//! The modules are layers: `event` (the domain event types, at the bottom) < `store` < `evolution`; `telemetry` <
//! `aggregate` < `projection` < `process` < `control`. A module uses only the ones below it; `scripts/structure`
//! checks it in CI.
#![doc(test(attr(deny(warnings))))]

pub mod aggregate;
pub mod backend;
pub mod control;
pub(crate) mod event;
pub mod evolution;
pub mod integration;
pub mod process;
pub mod projection;
pub mod store;
pub mod telemetry;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(any(doc, doctest))]
pub mod guide;

pub use aggregate::{Aggregate, Repository};
/// The attribute for implementing the crate's async traits (`Projection`, `ProcessManager`, ...), re-exported so
/// its version always matches: `#[es_core::async_trait]`.
pub use async_trait::async_trait;
pub use event::DomainEvent;
pub use projection::{Projection, ProjectionRunner};
pub use store::{
    EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, StoreError,
    StreamId, StreamRead, Version,
};

/// `#[derive(DomainEvent)]`: see [`DomainEvent`].
#[cfg(feature = "derive")]
pub use es_derive::DomainEvent;

/// What code generated by `es-derive` reaches the runtime through. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::aggregate::Aggregate;
    pub use crate::event::{
        DecodeError, DomainEvent, EncodeError, Upcaster, assert_reached, assert_upcasters,
    };
    pub use serde;
    pub use serde_json;
}

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
