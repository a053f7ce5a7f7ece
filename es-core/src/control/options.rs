//! How a runner takes part in the control plane.

use std::time::Duration;

/// How a [`ProjectionRunner`](crate::ProjectionRunner) reports its projections and takes control requests
/// ([`ProjectionRunner::control_plane`](crate::ProjectionRunner::control_plane)).
///
/// ```
/// use std::time::Duration;
/// use es_core::control::ControlOptions;
///
/// let options = ControlOptions::new().instance("billing-7").poll(Duration::from_millis(100));
/// assert_eq!(options.instance_name(), "billing-7");
/// ```
#[derive(Clone, Debug)]
pub struct ControlOptions {
    pub(crate) instance: String,
    pub(crate) poll: Duration,
    pub(crate) report_every: Duration,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ControlOptions {
    /// Polls for requests every 250 ms and reports every second, as instance `<host>-<pid>`.
    pub fn new() -> Self {
        Self {
            instance: default_instance(),
            poll: Duration::from_millis(250),
            report_every: Duration::from_secs(1),
        }
    }

    /// The name this runner reports under and claims requests as (its host and process id by default).
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = name.into();
        self
    }

    /// How often it looks for requests: the latency of a control request (at least 10 ms).
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// How often it writes its projections' reports (at least 100 ms).
    pub fn report_every(mut self, every: Duration) -> Self {
        self.report_every = every.max(Duration::from_millis(100));
        self
    }

    /// The instance name.
    pub fn instance_name(&self) -> &str {
        &self.instance
    }
}

/// `<host>-<pid>`: the host from `HOSTNAME` or `/etc/hostname`.
fn default_instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}", std::process::id())
}
