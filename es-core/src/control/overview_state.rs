//! [`OverviewState`]: the state an operator sees for a projection, across its instances.

use std::fmt;

use serde::{Serialize, Serializer};

/// A projection's state across its instances, as [`ProjectionOverview`](crate::control::ProjectionOverview)
/// shows it: the active instance's, else `Failed` when a live instance failed, else the freshest live report's;
/// `Gone` when every report is stale. Printed and serialised as its label (`running`, `gone`, ...), the same
/// labels the `es_projection_state` gauge uses.
///
/// ```
/// use es_core::control::OverviewState;
///
/// assert_eq!(OverviewState::from_label("paused"), OverviewState::Paused);
/// assert_eq!(OverviewState::Running.to_string(), "running");
/// assert!(OverviewState::Failed.needs_attention() && !OverviewState::Standby.needs_attention());
/// // A label from a newer release is kept as it was reported.
/// assert_eq!(OverviewState::from_label("draining").label(), "draining");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverviewState {
    /// Reading its checkpoint, taking its claim.
    Starting,
    /// Active and processing.
    Running,
    /// Active, paused by an operator.
    Paused,
    /// Waiting while another instance holds the projection.
    Standby,
    /// Lost its connection or claim; getting them back.
    Lost,
    /// Stopped with its runner.
    Stopped,
    /// Halted on an event its failure policy would not pass.
    Failed,
    /// Every instance's report is stale: no process reports it any more.
    Gone,
    /// A label this build does not know (reported by a newer release).
    Other(String),
}

impl OverviewState {
    /// The state of `label` as reports carry it.
    pub fn from_label(label: &str) -> Self {
        match label {
            "starting" => Self::Starting,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "standby" => Self::Standby,
            "lost" => Self::Lost,
            "stopped" => Self::Stopped,
            "failed" => Self::Failed,
            "gone" => Self::Gone,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Its label.
    pub fn label(&self) -> &str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Standby => "standby",
            Self::Lost => "lost",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Gone => "gone",
            Self::Other(label) => label,
        }
    }

    /// Whether no instance is working on it and none will by itself: failed, stopped or gone (what
    /// `es projections wait` gives up on, what the guide's example alerts fire on).
    pub fn needs_attention(&self) -> bool {
        matches!(self, Self::Failed | Self::Stopped | Self::Gone)
    }
}

impl fmt::Display for OverviewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for OverviewState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}
