//! Integration events and their CloudEvents 1.0 envelope (binary mode: attributes in headers, JSON data as body).

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use es_core::{EventId, RecordedEvent};
use uuid::Uuid;

/// An event for other services: a public type name and JSON data, decoupled from the domain event's shape.
///
/// ```
/// use es_nats::IntegrationEvent;
///
/// let event = IntegrationEvent::new("shop.order.placed.v1", serde_json::json!({ "order": "o-1" }));
/// assert_eq!(event.event_type, "shop.order.placed.v1");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationEvent {
    /// The public type (`ce-type`), versioned by convention.
    pub event_type: String,
    /// The data (the message body, JSON).
    pub data: serde_json::Value,
}

impl IntegrationEvent {
    /// An integration event of `event_type` carrying `data`.
    pub fn new(event_type: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            event_type: event_type.into(),
            data,
        }
    }
}

/// A received CloudEvent, as the relay published it.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudEvent {
    /// `ce-id`: the domain event's id, the de-duplication key.
    pub id: EventId,
    /// `ce-source`: the publishing service.
    pub source: String,
    /// `ce-type`.
    pub event_type: String,
    /// `ce-subject`: the stream the event was appended to.
    pub subject: String,
    /// `ce-sequence`: its version in that stream.
    pub sequence: u64,
    /// `ce-time`: when it happened.
    pub time: DateTime<Utc>,
    /// `ce-correlationid` extension.
    pub correlation_id: Option<Uuid>,
    /// `ce-causationid` extension.
    pub causation_id: Option<Uuid>,
    /// The W3C trace context of the command behind the event (the CloudEvents distributed-tracing extension,
    /// header `traceparent`): handlers continue that trace with
    /// [`continue_trace`](es_core::telemetry::continue_trace).
    pub traceparent: Option<String>,
    /// The data.
    pub data: serde_json::Value,
}

const ID: &str = "ce-id";
const SOURCE: &str = "ce-source";
const TYPE: &str = "ce-type";
const SUBJECT: &str = "ce-subject";
const SEQUENCE: &str = "ce-sequence";
const TIME: &str = "ce-time";
const CORRELATION: &str = "ce-correlationid";
const CAUSATION: &str = "ce-causationid";
const TRACEPARENT: &str = "traceparent";

/// The headers of `event` (from `record`) published by `source`.
pub(crate) fn headers(source: &str, event: &IntegrationEvent, record: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let id = record.event_id.to_string();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    headers.insert(ID, id.as_str());
    headers.insert("ce-specversion", "1.0");
    headers.insert(SOURCE, source);
    headers.insert(TYPE, event.event_type.as_str());
    headers.insert(SUBJECT, record.stream_id.as_str());
    headers.insert(SEQUENCE, record.version.get().to_string().as_str());
    let time = record.metadata.occurred_at.unwrap_or(record.recorded_at);
    headers.insert(TIME, time.to_rfc3339().as_str());
    headers.insert("content-type", "application/json");
    if let Some(id) = record.metadata.correlation_id {
        headers.insert(CORRELATION, id.to_string().as_str());
    }
    if let Some(id) = record.metadata.causation_id {
        headers.insert(CAUSATION, id.to_string().as_str());
    }
    if let Some(traceparent) = record.metadata.traceparent() {
        headers.insert(TRACEPARENT, traceparent);
    }
    headers
}

/// Reads a CloudEvent from a message's headers and body; the error names the missing or bad attribute.
pub(crate) fn parse(headers: Option<&HeaderMap>, body: &[u8]) -> Result<CloudEvent, String> {
    let headers = headers.ok_or("the message has no headers")?;
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .ok_or(format!("missing `{name}`"))
    };
    let uuid =
        |name: &str, text: String| Uuid::parse_str(&text).map_err(|e| format!("bad `{name}`: {e}"));
    let optional = |name: &str| {
        headers
            .get(name)
            .map(|v| uuid(name, v.as_str().to_owned()))
            .transpose()
    };
    Ok(CloudEvent {
        id: EventId::from_uuid(uuid(ID, get(ID)?)?),
        source: get(SOURCE)?,
        event_type: get(TYPE)?,
        subject: get(SUBJECT)?,
        sequence: get(SEQUENCE)?
            .parse()
            .map_err(|e| format!("bad `{SEQUENCE}`: {e}"))?,
        time: DateTime::parse_from_rfc3339(&get(TIME)?)
            .map_err(|e| format!("bad `{TIME}`: {e}"))?
            .to_utc(),
        correlation_id: optional(CORRELATION)?,
        causation_id: optional(CAUSATION)?,
        traceparent: headers.get(TRACEPARENT).map(|v| v.as_str().to_owned()),
        data: serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use es_core::{Metadata, Position, StreamId, Version};

    fn recorded(metadata: Metadata) -> RecordedEvent {
        RecordedEvent {
            stream_id: StreamId::new("account-1").unwrap(),
            version: Version::new(3),
            position: Position::new(7, 9),
            event_id: EventId::new(),
            event_type: "Deposited".to_owned(),
            schema_version: 1,
            payload: serde_json::json!({ "amount": 5 }),
            metadata,
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn the_trace_context_travels_as_the_traceparent_extension() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let event = IntegrationEvent::new("bank.deposited.v1", serde_json::json!({ "amount": 5 }));
        let record = recorded(Metadata::new().with("traceparent", traceparent));
        let headers = headers("bank", &event, &record);
        assert_eq!(headers.get("traceparent").unwrap().as_str(), traceparent);
        let parsed = parse(Some(&headers), b"{}").unwrap();
        assert_eq!(parsed.traceparent.as_deref(), Some(traceparent));

        let untraced = headers_of_untraced(&event);
        assert!(untraced.get("traceparent").is_none());
        assert_eq!(parse(Some(&untraced), b"{}").unwrap().traceparent, None);
    }

    fn headers_of_untraced(event: &IntegrationEvent) -> HeaderMap {
        headers("bank", event, &recorded(Metadata::new()))
    }
}
