//! The guide: from a first aggregate to operating it in production, one chapter per topic. Every code block
//! is compiled as a doctest (those that need a server are compiled, not run). The API reference is in the
//! modules; the chapters link to it.
//!
//! 1. [Aggregates and their tests](aggregates): deciders, events, the repository, given/when/then.
//! 2. [Stores](stores): memory, SQLite, PostgreSQL; the contract they share.
//! 3. [Projections and read models](projections): the runner, failures, exactly-once workers, scaling out.
//! 4. [Invariants across aggregates](consistency): multi-stream appends, tags and conditional appends, what they
//!    cost, the race suite.
//! 5. [Process managers](process_managers): workflows across aggregates, timers, compensation.
//! 6. [Integration events](outbox): the store as the outbox, relays to NATS, Kafka and RabbitMQ.
//! 7. [Operating it](operating): metrics, traces, the control plane, the `es` CLI, the admin page, faults.
//! 8. [Evolution](evolution): upcasters, the pre-deploy schema check, past states.
//! 9. [Performance](performance): how it is measured, and the knobs.

#[doc = include_str!("../docs/aggregates.md")]
pub mod aggregates {}

#[doc = include_str!("../docs/stores.md")]
pub mod stores {}

#[doc = include_str!("../docs/projections.md")]
pub mod projections {}

#[doc = include_str!("../docs/consistency.md")]
pub mod consistency {}

#[doc = include_str!("../docs/process_managers.md")]
pub mod process_managers {}

#[doc = include_str!("../docs/outbox.md")]
pub mod outbox {}

#[doc = include_str!("../docs/operating.md")]
pub mod operating {}

#[doc = include_str!("../docs/evolution.md")]
pub mod evolution {}

#[doc = include_str!("../docs/performance.md")]
pub mod performance {}
