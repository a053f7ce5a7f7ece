//! What holds the global order back: the oldest transaction still open on the server.

use std::time::Duration;

/// The oldest transaction still running on the server, which holds back the global order: events committed after
/// it started are not delivered until it ends (so the order never skips). Alert when it gets old.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    /// Committed events waiting behind it.
    pub events: u64,
    /// Its server process id, when the server shows it.
    pub pid: Option<i32>,
    /// How long it has been open.
    pub age: Option<Duration>,
    /// Its state (`idle in transaction`, `active`, ...).
    pub state: Option<String>,
    /// Its application name.
    pub application_name: Option<String>,
}
