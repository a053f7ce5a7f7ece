//! The control plane: operate projections from any process.
//!
//! A runner given a [`ControlStore`] ([`ProjectionRunner::control_plane`](crate::ProjectionRunner::control_plane))
//! writes a [`ProjectionReport`] per projection every second (state, checkpoint, errors, who holds it) and takes the
//! [`ControlRequest`]s written for the projections it runs, carrying each out between batches and writing its
//! [`ControlAnswer`]. An [`Operator`], in any process connected to the same store (the `es` CLI, the admin page,
//! your own tooling), reads every projection's status, dead letters and process manager instances, and sends requests:
//!
//! - pause / resume (durable: a standby that takes over stays paused), rebuild, reset to a position, redrive one
//!   dead letter or all, discard one;
//! - each request is answered exactly once: [`ControlAnswer::Done`], [`ControlAnswer::Rejected`] with the reason
//!   (nothing changed), or [`ControlAnswer::TimedOut`]. A request nobody took in time is withdrawn (it will not be
//!   carried out later); one that an instance took and did not finish in time names that instance.
//! - A request only goes to the instance running the projection; with none running, [`Operator::send`] refuses at
//!   once instead of leaving a request nobody will take.
//!
//! Latency: a request is taken within the runner's [`ControlOptions::poll`] (250 ms by default) once the batch in
//! flight finishes. Reports older than [`DEFAULT_STALE_AFTER`] count as gone.
//!
//! See [`Operator`] for an example.

mod agent;
mod browse;
mod command;
mod operator;
mod operator_store;
mod options;
mod overview_state;
mod report;
mod store;

pub use browse::{Migration, MigrationStatus, StreamSummary};
pub use command::{ControlAnswer, ControlCommand};
pub use operator::{DEFAULT_STALE_AFTER, InstanceReport, Operator, ProjectionOverview};
pub use operator_store::OperatorStore;
pub use options::ControlOptions;
pub use overview_state::OverviewState;
pub use report::ProjectionReport;
pub use store::{ControlRequest, ControlStore, RequestState};
