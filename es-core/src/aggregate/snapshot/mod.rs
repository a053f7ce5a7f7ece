//! Snapshots: an aggregate's folded state stored at a stream version, so loads fold only the events after it.
//!
//! | file | concept |
//! |---|---|
//! | `stored.rs` | [`Snapshot`], the stored form, and [`SnapshotStore`], what backends implement |
//! | `snapshotting.rs` | [`Snapshotting`]: an aggregate opts in by saying how its state becomes a snapshot |
//! | `policy.rs` | [`SnapshotPolicy`]: when the repository writes one ([`SnapshotDue`] is what it decides on) |
//! | `writer.rs` | how the repository reads and writes them (not public) |
//!
//! See [`Repository::with_snapshots`](crate::Repository::with_snapshots) for turning them on, and the
//! [`aggregate`](crate::aggregate) overview for when writes happen.

mod policy;
mod snapshotting;
pub(crate) mod stored;
pub(crate) mod writer;

pub use policy::{SnapshotDue, SnapshotPolicy};
pub use snapshotting::Snapshotting;
pub use stored::{Snapshot, SnapshotStore};
