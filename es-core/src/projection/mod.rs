//! Projections: read models built from the global stream, checkpointed, rebuildable.
//!
//! A [`Projection`] turns events into read-model updates. The [`ProjectionRunner`] feeds it: catch-up in batches
//! from [`EventStore::subscribe_filtered`](crate::EventStore::subscribe_filtered) (only the categories and types it
//! reads, filtered by the store), then live from one feed the runner shares between its caught-up projections (read
//! once per process, a bounded buffer: a projection that falls behind reads on its own), a checkpoint after each batch
//! (in a [`CheckpointStore`]), retries with backoff for [`TransientError`]s, then the projection's
//! [`FailurePolicy`] (stop, skip, or park the event as a [`DeadLetter`]). [`RunningProjections`] is the handle:
//! status and lag ([`ProjectionStatus`], [`ProjectionState`]), read-your-writes (`wait_for` a position), rebuild,
//! reset, dead letters and redrive, shutdown.
//!
//! **Which worker runs a projection.** [`ProjectionRunner::with_projection`] runs it on any store through the
//! default worker: at-least-once (after a crash, the events since the last checkpoint are delivered again; handlers see
//! each event's id to de-duplicate). `es-postgres` adds `PgProjection`, whose handler writes the read model in the
//! transaction that moves the checkpoint (exactly-once effect), and which runs in one process at a time (the others
//! stand by, [`ProjectionState::Standby`], and take over when it goes away), added with
//! [`ProjectionRunner::with`]. Backends implement workers through
//! [`backend::ProjectionWorker`](crate::backend::ProjectionWorker).
//!
//! **What a projection sees.** Events whose stored type its `Event` type reads (directly or through its
//! [upcasters](crate::evolution)), in the categories it names ([`Projection::categories`]; the event type's
//! `#[event(aggregate = ..)]` or `#[event(category = ..)]` by default), in global order; each event once per delivery, per stream in version
//! order.
//!
//! ```
//! use es_core::projection::{HandlerError, Projection, ProjectionOptions, ProjectionRunner};
//! use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
//! use es_memory::InMemoryEventStore;
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//! use std::time::Duration;
//!
//! #[derive(DomainEvent)]
//! enum Light { SwitchedOn }
//!
//! struct SwitchCount(Arc<AtomicU64>);
//!
//! #[es_core::async_trait]
//! impl Projection for SwitchCount {
//!     type Event = Light;
//!     fn name(&self) -> &str { "switch-count" }
//!     async fn handle(&self, _: Light, _: &RecordedEvent) -> Result<(), HandlerError> {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! let count = Arc::new(AtomicU64::new(0));
//! let running = ProjectionRunner::new(store.clone())
//!     .with_projection(SwitchCount(count.clone()), store.clone(), ProjectionOptions::default())
//!     .start();
//!
//! let on = NewEvent::new("SwitchedOn", 1, serde_json::json!({}));
//! let done = store.append(&StreamId::new("light-1")?, ExpectedVersion::Any, vec![on]).await?;
//! running.wait_for("switch-count", done.last_position, Duration::from_secs(5)).await?;
//! assert_eq!(count.load(Ordering::Relaxed), 1);
//! running.shutdown().await;
//! # Ok(()) }
//! ```

mod checkpoint;
pub(crate) mod checkpointed;
mod dead_letter;
pub mod document;
pub(crate) mod handler;
mod options;
pub(crate) mod replay;
pub(crate) mod runner;
mod sampler;
mod shared_feed;
mod status;
pub(crate) mod transactional;
pub(crate) mod worker;

/// Re-exported from [`store`](crate::store), where the store reports it; the path users know stays.
pub use crate::store::HeldBack;
pub use checkpoint::CheckpointStore;
pub use dead_letter::{DeadLetter, DeadLetterStore};
pub use handler::{HandlerError, Projection, TransientError};
pub use options::{FailurePolicy, ProjectionOptions};
pub use replay::{NoReset, Replay};
pub use runner::{
    DEFAULT_METRICS_INTERVAL, DEFAULT_SHUTDOWN_GRACE, ProjectionRunner, RunnerError,
    RunningProjections,
};
pub(crate) use sampler::lag_seconds;
pub use status::{Holder, ProjectionState, ProjectionStatus};
