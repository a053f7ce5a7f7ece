//! Process managers (sagas): long-running workflows across aggregates.
//!
//! A [`ProcessManager`] folds the events it cares about into per-instance state (pure, like an aggregate) and
//! reacts with commands and timers (pure too). The [`ProcessRunner`] feeds it from the global stream through the
//! projection runner, sends its commands through a [`CommandRouter`], delivers rejections back to it as
//! [`Input::Rejected`] so it can compensate, fires its timers once at or after their deadlines, and keeps state
//! and timers in a [`ProcessStore`].
//!
//! Exactly-once effect under redelivery: every command gets an id derived from (process, instance, causing input,
//! step), and the events it produces get ids derived from that; a redelivered input re-sends the same command ids,
//! and [`Repository::execute_as`](crate::Repository::execute_as) recognises them as already executed.

mod ids;
mod manager;
mod router;
mod runner;
mod store;

pub use ids::{command_id, event_id_for};
pub use manager::{Input, ProcessManager, Reaction, Timer};
pub use router::{CommandContext, CommandRouter, Outcome, RouteError};
pub use runner::{ProcessRunner, RunningProcess};
pub use store::{DueTimer, ProcessRecord, ProcessStore, TimerChanges};
