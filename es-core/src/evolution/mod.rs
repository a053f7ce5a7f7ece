//! Schema evolution: how events stored by older releases still load.
//!
//! Stored events are never rewritten. When an event's shape changes, bump its `#[event(version = N)]` and declare
//! an [`Upcaster`] from `N - 1` to `N`: a pure function on the stored JSON. The upcasters belong to the event
//! type (`#[event(upcasters = ...)]`), so they are registered once and every read path that decodes the type
//! runs the same chain: [`Repository`](crate::Repository) loads, [`RecordedEvent::decode`](crate::RecordedEvent::decode),
//! [`TypedRead`](crate::store::TypedRead), projections, process managers, the NATS relay and the [`SchemaCheck`].
//! A chain that does not reach the version the code reads is a compile error naming the missing step.
//!
//! Before a deploy, [`SchemaCheck`] samples every (type, version) pair a store holds (through its
//! [`EventCatalog`]) and reports the ones today's code cannot decode — also what `es schema check` runs.
//!
//! ```
//! use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, StreamId, StreamRead};
//! use es_core::evolution::{SchemaCheck, Upcaster};
//! use es_memory::InMemoryEventStore;
//! use serde_json::{json, Value};
//!
//! // Release 1 stored `SwitchedOn {}`; release 2 added the brightness.
//! const LIGHT_UPCASTERS: &[Upcaster] = &[Upcaster::new("SwitchedOn", 1, |mut p: Value| {
//!     p["lux"] = json!(100);
//!     p
//! })];
//!
//! #[derive(Debug, PartialEq, DomainEvent)]
//! #[event(upcasters = LIGHT_UPCASTERS)]
//! enum Light {
//!     #[event(version = 2)]
//!     SwitchedOn { lux: u32 },
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let stream = StreamId::new("light-1")?;
//! store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("SwitchedOn", 1, json!({}))]).await?;
//!
//! let stored = store.read_stream(&stream, StreamRead::forward()).await?;
//! assert_eq!(stored[0].decode::<Light>()?, Light::SwitchedOn { lux: 100 });
//!
//! let report = SchemaCheck::new().expect::<Light>().run(&store).await?;
//! assert!(report.is_ok(), "{report}");
//! # Ok(()) }
//! ```

mod catalog;
mod schema_check;

pub use crate::event::{
    Transform, Upcaster, UpcasterError, check, decode_payload, decode_text, reads,
};
pub use crate::store::fold::decode_view;
pub use catalog::{EventCatalog, StoredEventType};
pub use schema_check::{SchemaCheck, SchemaProblem, SchemaReport};
