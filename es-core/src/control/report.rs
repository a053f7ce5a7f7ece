//! What each process running a projection reports about it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::Position;

/// One instance's view of one projection, written to the store by its runner every
/// [`report_every`](crate::control::ControlOptions::report_every), so any process can read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionReport {
    /// The projection.
    pub projection: String,
    /// The reporting instance ([`ControlOptions::instance`](crate::control::ControlOptions::instance)).
    pub instance: String,
    /// Its state there ([`ProjectionState::label`](crate::projection::ProjectionState::label)): `running`, `paused`,
    /// `standby`, `lost`, `stopped`, `failed`.
    pub state: String,
    /// The error of a `lost` or `failed` projection, or who holds it as a `standby` sees it.
    pub detail: Option<String>,
    /// Its checkpoint as the instance last saw it.
    pub checkpoint: Option<Position>,
    /// When it last handled an event.
    pub last_event_at: Option<DateTime<Utc>>,
    /// When the report was written.
    pub reported_at: DateTime<Utc>,
}

impl ProjectionReport {
    /// Whether this instance carries out control requests for the projection (it runs it).
    pub fn is_active(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused")
    }
}
