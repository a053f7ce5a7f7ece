//! What a running projection reports.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{HeldBack, Position};

/// Where a projection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectionState {
    /// Started, and not yet asked to become the active instance: it is `running`, `standby` or `lost` once its
    /// first attempt answers. (It used to report `standby` meanwhile, so a lone instance briefly looked like one.)
    Starting,
    /// Waiting to become the active instance: another process runs it (`holder`, when the backend can tell).
    /// Control requests are refused with [`RunnerError::NotActive`](crate::projection::RunnerError::NotActive).
    Standby {
        /// Who runs it now.
        holder: Option<Holder>,
    },
    /// Catching up or live.
    Running,
    /// Paused by an operator ([`ControlCommand::Pause`](crate::control::ControlCommand::Pause)): it reads nothing
    /// until resumed, and still answers control requests.
    Paused,
    /// It lost its connection or its claim on the projection and is getting them back (then it carries on from
    /// its checkpoint, or goes standby when another instance took over meanwhile). Control requests are refused
    /// with [`RunnerError::NotActive`](crate::projection::RunnerError::NotActive).
    Lost {
        /// Why: the last error.
        error: String,
    },
    /// Shut down.
    Stopped,
    /// Halted on an event it could not handle ([`FailurePolicy::Stop`](crate::projection::FailurePolicy::Stop)).
    Failed {
        /// The error, naming the event.
        error: String,
    },
}

impl ProjectionState {
    /// Its name in metrics, reports and the CLI: `starting`, `standby`, `running`, `paused`, `lost`, `stopped`,
    /// `failed`. (The control plane adds `gone` for a projection whose every instance stopped reporting.)
    ///
    /// ```
    /// use es_core::projection::ProjectionState;
    /// assert_eq!(ProjectionState::Paused.label(), "paused");
    /// ```
    pub fn label(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Standby { .. } => "standby",
            Self::Lost { .. } => "lost",
            Self::Stopped => "stopped",
            Self::Failed { .. } => "failed",
        }
    }

    /// The error it carries (lost, failed), if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Lost { error } | Self::Failed { error } => Some(error),
            _ => None,
        }
    }
}

/// The instance that runs a projection, as a standby sees it: on PostgreSQL the backend holding the projection's
/// lock. Each field is `None` when the server does not show it (another role's session, a Unix socket).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    /// Its server process id (`pg_stat_activity.pid`).
    pub pid: Option<i32>,
    /// Its application name (set it with `application_name` in the database URL).
    pub application_name: Option<String>,
    /// Its client address.
    pub client_addr: Option<String>,
    /// When it started holding (its lock connection was opened for the lock, right before taking it).
    pub since: Option<DateTime<Utc>>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unknown = || "?".to_owned();
        write!(
            f,
            "pid {} ({}) from {} since {}",
            self.pid.map_or_else(unknown, |p| p.to_string()),
            self.application_name.clone().unwrap_or_else(unknown),
            self.client_addr.clone().unwrap_or_else(unknown),
            self.since.map_or_else(unknown, |s| s.to_rfc3339()),
        )
    }
}

/// A projection's progress and health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The projection.
    pub name: String,
    /// Its state.
    pub state: ProjectionState,
    /// The position of the last event it finished (its checkpoint); `None` before the first.
    pub checkpoint: Option<Position>,
    /// The newest position in the store's global order when the status was taken.
    pub head: Option<Position>,
    /// Events it still has to see: those between the checkpoint and the head, and those committed but held back
    /// behind an open transaction ([`held_back`](Self::held_back)). As the store's
    /// [`count_after`](crate::EventStore::count_after) counts: on PostgreSQL exact up to a cap (100,000 by
    /// default), estimated from positions past it, so that reading it costs the same however far behind.
    pub lag_events: u64,
    /// Committed events the global order holds back, and the transaction holding them; `None` when nothing waits.
    pub held_back: Option<HeldBack>,
    /// Time since it last handled an event; `None` before the first.
    pub since_last_event: Option<Duration>,
    /// Its dead letters.
    pub dead_letters: usize,
}
