//! Event metadata: where an event came from and when.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The metadata key of the W3C trace context of the command behind an event.
pub(crate) const TRACEPARENT: &str = "traceparent";

/// What is known about an event besides its payload: the ids that tie it to the request and the message that
/// caused it, when it happened, and free key/values (tenant, user, ...).
///
/// The metadata given to [`Repository::execute`](crate::Repository::execute) is the command's; every event the
/// command produces carries its correlation id, causation id and key/values.
///
/// ```
/// use es_core::Metadata;
/// use uuid::Uuid;
///
/// let request = Uuid::now_v7();
/// let metadata = Metadata::new()
///     .with_correlation_id(request)
///     .with_causation_id(request)
///     .with("user", "alice");
/// assert_eq!(metadata.correlation_id, Some(request));
/// assert_eq!(metadata.extra["user"], "alice");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Ties together every message of one business transaction (a request, a process manager instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the message (command or event) that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// When the event happened in the domain. The repository sets it to the time of the command when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Free key/values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Metadata {
    /// Whether nothing is set (it stores as `{}`).
    ///
    /// ```
    /// use es_core::Metadata;
    ///
    /// assert!(Metadata::new().is_empty());
    /// assert!(!Metadata::new().with_correlation_id(uuid::Uuid::nil()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none()
            && self.causation_id.is_none()
            && self.occurred_at.is_none()
            && self.extra.is_empty()
    }

    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets when the event happened.
    pub fn with_occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = Some(at);
        self
    }

    /// Adds a key/value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The W3C trace context of the command that produced the event (`00-<trace id>-<span id>-<flags>`), kept
    /// under the key `traceparent`. The repository sets it from the current span when the `opentelemetry` feature
    /// is on; projections, process managers and the relay continue that trace.
    ///
    /// ```
    /// use es_core::Metadata;
    ///
    /// let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert_eq!(Metadata::new().with("traceparent", traceparent).traceparent(), Some(traceparent));
    /// assert_eq!(Metadata::new().traceparent(), None);
    /// ```
    pub fn traceparent(&self) -> Option<&str> {
        self.extra
            .get(TRACEPARENT)
            .and_then(serde_json::Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_metadata_is_an_empty_object_and_round_trips() {
        assert_eq!(serde_json::to_string(&Metadata::new()).unwrap(), "{}");
        let full = Metadata::new()
            .with_correlation_id(Uuid::nil())
            .with_causation_id(Uuid::max())
            .with_occurred_at(DateTime::UNIX_EPOCH)
            .with("n", 1);
        let json = serde_json::to_value(&full).unwrap();
        assert_eq!(serde_json::from_value::<Metadata>(json).unwrap(), full);
    }
}
