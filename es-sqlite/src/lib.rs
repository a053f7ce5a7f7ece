//! A durable embedded event store on SQLite: one file, nothing to install (sqlx's SQLite driver with the bundled
//! library), every store trait the other backends implement, live subscriptions, and transactional projections.
//!
//! ```
//! use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
//! use es_sqlite::SqliteEventStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("es-sqlite-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let store = SqliteEventStore::open(dir.join("bank.db")).await?; // created and migrated on first open
//! let stream = StreamId::new("account-1")?;
//! store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("Opened", 1, serde_json::json!({}))]).await?;
//! assert_eq!(store.read_all(Position::START, 10).await?.len(), 1);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! # How it uses SQLite, and why
//! - **WAL mode** (`journal_mode=WAL`): readers never block the writer nor each other, and see a consistent
//!   snapshot.
//! - **One writer connection per store, and a pool of readers.** SQLite allows one writer at a time per file; the
//!   store queues its own writes on one connection instead of letting them fight over the lock.
//! - **Writes in `BEGIN IMMEDIATE` transactions.** A deferred transaction that reads, then writes, can fail with
//!   `SQLITE_BUSY` at its first write without waiting (its read snapshot is stale once another connection wrote);
//!   `IMMEDIATE` takes the write lock first, so the busy timeout applies and the read inside is current.
//! - **A busy timeout** (5 s by default, [`SqliteEventStoreBuilder::busy_timeout`]) on every connection: a writer
//!   in another process sharing the file is waited for, not reported. A write still refused after it is retried
//!   for as long again before the error reaches the caller.
//! - **`synchronous=FULL` by default** ([`Durability::Full`]): each commit is on disk (fsync of the WAL) before
//!   `append` returns, so an acknowledged event survives a power loss. [`Durability::Normal`] syncs only at WAL
//!   checkpoints: faster, still never corrupt, and safe against the process crashing, but the last commits before
//!   a power loss or OS crash can be lost.
//!
//! # The global order has no gaps
//! An event's [`Position`](es_core::Position) is its row id in `events` (both halves). Only one transaction
//! writes at a time, so row ids are taken in commit order: when a reader sees position P, every event before P is
//! already committed, and nothing can commit before P later. (PostgreSQL needs transaction ids and snapshots to
//! get there; here the single writer gives it for free.) A rolled-back append takes no row id.
//!
//! # Live subscriptions
//! An append wakes this process's subscribers at once. Appends by another process sharing the file are noticed by
//! polling `PRAGMA data_version` (a read of a counter, no table access) every 50 ms by default
//! ([`SqliteEventStoreBuilder::poll_interval`]): that is their latency.
//!
//! # Transactional projections
//! [`SqliteProjection`] handlers write their read model in the transaction that moves the checkpoint (exactly
//! once); one process at a time runs a projection, by a lease in the file ([`SqliteProjectionWorker`]).

mod append;
mod browse;
mod catalog;
mod checkpoints;
mod control;
mod dead_letters;
mod documents;
mod error;
mod fold;
mod inbox;
mod live;
mod migrate;
mod multi;
mod processes;
mod projection;
mod query;
mod rows;
mod snapshots;
mod store;
mod transaction;

pub use error::SqliteSetupError;
pub use inbox::SqliteTransaction;
pub use projection::{ReadModel, SqliteProjection, SqliteProjectionWorker};
pub use sqlx;
pub use store::{Durability, SqliteEventStore, SqliteEventStoreBuilder};
