//! The event store: streams of events with optimistic concurrency, and one global order over all of them.
//!
//! Every backend (`es-memory`, `es-postgres`) implements [`EventStore`] and passes the same conformance suites.
//!
//! - A **stream** ([`StreamId`], `{category}-{id}`) holds one aggregate's events at **versions** 1, 2, 3, ...
//!   ([`Version`]); [`ExpectedVersion`] states what an append expects to find, and a mismatch is
//!   [`StoreError::Conflict`] with nothing written.
//! - An append ([`NewEvent`]s in, [`AppendResult`] out) is atomic and idempotent by event id: a retried batch
//!   answers with the original result, marked `replayed`.
//! - Every stored event ([`RecordedEvent`]) also has a **[`Position`]** in the global order across all streams.
//!   Its one hard rule: a reader that has seen position P never later finds an event before P. That is what
//!   projections checkpoint and what [`EventStore::subscribe_all`] resumes from. See [`Position`] for what its two
//!   numbers are on each backend.
//! - Reads: [`EventStore::read_stream`] ([`StreamRead`]: direction, start, limit), [`EventStore::read_all`] in
//!   global order, [`EventStore::subscribe_all`] (catch-up, then live), and typed reads that decode through the
//!   event type's upcasters ([`TypedRead`]).
//! - Bad input is a typed error naming what was wrong ([`StoreError`]); [`EventLimits`] bound what one event may
//!   hold, the same on every backend.
//!
//! ```
//! use es_core::store::{EventStore, ExpectedVersion, NewEvent, Position, StoreError, StreamId, StreamRead};
//! use es_memory::InMemoryEventStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let stream = StreamId::new("light-1")?;
//! let on = || NewEvent::new("SwitchedOn", 1, serde_json::json!({ "lux": 300 }));
//! let first = store.append(&stream, ExpectedVersion::NoStream, vec![on()]).await?;
//! assert_eq!(first.last_version.get(), 1);
//!
//! // A writer that still believes the stream is new is refused; nothing is written.
//! let late = store.append(&stream, ExpectedVersion::NoStream, vec![on()]).await;
//! assert!(matches!(late, Err(StoreError::Conflict { .. })));
//!
//! assert_eq!(store.read_stream(&stream, StreamRead::forward()).await?.len(), 1);
//! let all = store.read_all(Position::START, 100).await?;
//! assert_eq!(all[0].position, first.last_position);
//! # Ok(()) }
//! ```

pub(crate) mod append;
pub(crate) mod error;
mod event_store;
mod feed;
pub(crate) mod fold;
mod held_back;
mod limits;
mod metadata;
pub(crate) mod multi;
mod position;
mod query;
mod read;
mod record;
pub(crate) mod replay;
mod stream;
mod typed;
mod version;

pub use crate::event::serde_summary;
pub use crate::event::{DecodeError, EncodeError, EventId};
pub use append::AppendResult;
pub(crate) use append::validate_batch;
pub use error::{CorruptEvent, DuplicateReason, EventDecodeError, StoreError, StreamIdError};
pub use event_store::{EventStore, EventStream};
pub use feed::{FeedBatch, FeedFilter, FeedStream, filtered, partition_of};
pub use held_back::HeldBack;
pub use limits::EventLimits;
pub use metadata::Metadata;
#[cfg(feature = "opentelemetry")]
pub(crate) use metadata::TRACEPARENT;
pub use multi::{MultiAppend, MultiParts, StreamAppend, StreamConflict};
pub use position::{ParsePositionError, Position};
pub use query::{AppendCondition, Query, QueryItem, QueryRead};
pub use read::{Direction, StreamRead};
pub use record::{NewEvent, RecordedEvent};
pub use stream::StreamId;
pub(crate) use stream::category_of;
pub use typed::{Decoded, ReadError, TypedRead};
pub use version::{ExpectedVersion, Version};
