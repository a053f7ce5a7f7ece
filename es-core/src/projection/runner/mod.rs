//! The projection runner, shaped like a runtime: the [`ProjectionRunner`] builder, the [`RunningProjections`]
//! handle, one task per projection (catch-up in batches, then live; checkpoints; standby and recovery), its
//! failure handling (retries, dead letters, parked streams) and the control requests it carries out while running.

mod builder;
mod control;
mod error;
mod failure;
mod running;
mod task;

pub use builder::{DEFAULT_METRICS_INTERVAL, ProjectionRunner};
pub(crate) use control::{Control, Controlled, Supervisor, TaskStatus, ask};
pub use error::RunnerError;
pub use running::{DEFAULT_SHUTDOWN_GRACE, RunningProjections};
