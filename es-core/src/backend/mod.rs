//! For implementors of a backend (an event store, a projection worker): the pieces the store traits are built
//! from, which applications do not need to name.
//!
//! A backend implements the store traits of the concept modules — [`EventStore`](crate::store::EventStore),
//! [`SnapshotStore`](crate::aggregate::SnapshotStore), [`CheckpointStore`](crate::projection::CheckpointStore),
//! [`DeadLetterStore`](crate::projection::DeadLetterStore), [`ProcessStore`](crate::process::ProcessStore),
//! [`EventCatalog`](crate::evolution::EventCatalog) — and proves it with the conformance suites in
//! `es_core::testing::conformance` (feature `testing`). It calls the checks here so every backend refuses the
//! same bad input with the same typed error, and may implement the load fast path ([`FoldRead`], [`EventView`]).
//! A backend with transactional read models implements [`ProjectionWorker`].
//!
//! ```
//! use es_core::backend::validate_append;
//! use es_core::store::{NewEvent, StoreError, StreamId};
//!
//! let stream = StreamId::new("light-1")?;
//! // An empty batch, refused before any I/O, the same way on every backend.
//! assert!(matches!(validate_append(&stream, &[]), Err(StoreError::EmptyAppend { .. })));
//! assert!(validate_append(&stream, &[NewEvent::new("SwitchedOn", 1, serde_json::json!({}))]).is_ok());
//! # Ok::<(), es_core::store::StreamIdError>(())
//! ```

mod delegate;

pub use crate::aggregate::snapshot::store::validate_snapshot;
pub use crate::projection::checkpointed::CheckpointedWorker;
pub use crate::projection::handler::{describe, wants};
pub use crate::projection::replay::{owned_reset, rebuild_allowed, reset_allowed};
pub use crate::projection::transactional::{TransactionalBackend, TransactionalWorker, TxFailure};
pub use crate::projection::worker::{
    Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError,
};
pub use crate::store::append::validate_append;
pub use crate::store::fold::{EventView, FoldRead, PayloadView, Visit};
pub use crate::store::multi::validate_multi;
pub use crate::store::replay::{StoredAt, retry_of};
