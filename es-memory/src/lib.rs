//! # es-memory
//!
//! [`InMemoryEventStore`]: every `es-core` store trait (events, snapshots, checkpoints, dead letters, process state and timers, the event catalog) in memory. It is the embedded default (no setup, fast) and
//! the test double for application tests; it passes the same conformance suite as the PostgreSQL store.
//!
//! ```
//! use es_core::{EventStore, ExpectedVersion, NewEvent, StreamId, StreamRead};
//! use es_memory::InMemoryEventStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let stream = StreamId::new("note-1")?;
//! store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("Written", 1, serde_json::json!({"text": "hi"}))]).await?;
//! assert_eq!(store.read_stream(&stream, StreamRead::forward()).await?.len(), 1);
//! # Ok(()) }
//! ```
#![doc(test(attr(deny(warnings))))]

mod browse;
mod catalog;
mod checkpoints;
mod control;
mod dead_letters;
mod documents;
mod inbox;
mod log;
mod processes;
mod query_index;
mod snapshots;
mod store;
mod subscription;

pub use inbox::MemoryTransaction;
pub use store::InMemoryEventStore;
