//! Integration events, and the CloudEvents 1.0 envelope they travel in: attributes beside the JSON data (binary
//! mode), named per protocol binding by the publisher.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::{EventId, RecordedEvent};

/// An event for other services: a public type name and JSON data, decoupled from the domain event's shape.
///
/// ```
/// use es_core::integration::IntegrationEvent;
///
/// let event = IntegrationEvent::new("shop.order.placed.v1", serde_json::json!({ "order": "o-1" }));
/// assert_eq!(event.event_type, "shop.order.placed.v1");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationEvent {
    /// The public type (CloudEvents `type`), versioned by convention.
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

/// One message for a [`Publisher`](crate::integration::Publisher): its key (the stream id: one stream's events go
/// to one partition or queue, in order), its CloudEvents attributes and its JSON body.
///
/// ```
/// use es_core::integration::{CloudEvent, IntegrationEvent, Outgoing};
/// # use es_core::{EventId, Metadata, Position, RecordedEvent, StreamId, Version};
/// # let record = RecordedEvent { stream_id: StreamId::new("account-1").unwrap(), version: Version::new(3),
/// #     position: Position::new(7, 9), event_id: EventId::new(), event_type: "Deposited".into(), schema_version: 1,
/// #     payload: serde_json::json!({}), metadata: Metadata::new(), recorded_at: chrono::Utc::now(), tags: vec![] };
/// let event = IntegrationEvent::new("bank.account.deposited.v1", serde_json::json!({ "amount": 5 }));
/// let message = Outgoing::new("bank", &event, &record)?;
/// // A binding names the attributes its way: Kafka `ce_id`, AMQP `cloudEvents_id`, NATS `ce-id`.
/// let headers: Vec<(String, String)> =
///     message.attributes().map(|(name, value)| (format!("ce_{name}"), value.to_owned())).collect();
/// let received = CloudEvent::parse(
///     |name| headers.iter().find(|(n, _)| *n == format!("ce_{name}")).map(|(_, v)| v.clone()),
///     &message.data,
/// )?;
/// assert_eq!((received.id, received.subject.as_str(), received.sequence), (record.event_id, "account-1", 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The message key: the stream id.
    pub key: String,
    /// The event id (CloudEvents `id`): the de-duplication key.
    pub id: EventId,
    /// The attributes as (CloudEvents attribute name, value), `id` first.
    attributes: Vec<(&'static str, String)>,
    /// The JSON body.
    pub data: Vec<u8>,
}

/// The content type of every message body.
pub const CONTENT_TYPE: &str = "application/json";

impl Outgoing {
    /// The message for `event`, mapped from `record`, published by `source`.
    ///
    /// # Errors
    /// The data does not serialize to JSON.
    pub fn new(
        source: &str,
        event: &IntegrationEvent,
        record: &RecordedEvent,
    ) -> Result<Self, serde_json::Error> {
        let time = record.metadata.occurred_at.unwrap_or(record.recorded_at);
        let mut attributes = vec![
            (ID, record.event_id.to_string()),
            ("specversion", "1.0".to_owned()),
            (SOURCE, source.to_owned()),
            (TYPE, event.event_type.clone()),
            (SUBJECT, record.stream_id.as_str().to_owned()),
            (SEQUENCE, record.version.get().to_string()),
            (TIME, time.to_rfc3339()),
            ("datacontenttype", CONTENT_TYPE.to_owned()),
        ];
        if let Some(id) = record.metadata.correlation_id {
            attributes.push((CORRELATION, id.to_string()));
        }
        if let Some(id) = record.metadata.causation_id {
            attributes.push((CAUSATION, id.to_string()));
        }
        if let Some(traceparent) = record.metadata.traceparent() {
            attributes.push((TRACEPARENT, traceparent.to_owned()));
        }
        Ok(Self {
            key: record.stream_id.as_str().to_owned(),
            id: record.event_id,
            attributes,
            data: serde_json::to_vec(&event.data)?,
        })
    }

    /// The CloudEvents attributes, as (name without binding prefix, value): `id`, `specversion`, `source`, `type`,
    /// `subject`, `sequence`, `time`, `datacontenttype`, and when known the extensions `correlationid`,
    /// `causationid` and `traceparent` (distributed tracing).
    pub fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.attributes.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// Its CloudEvents `type`.
    pub fn event_type(&self) -> &str {
        self.attributes
            .iter()
            .find(|(n, _)| *n == TYPE)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A received CloudEvent, as a relay published it.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudEvent {
    /// `id`: the domain event's id, the de-duplication key.
    pub id: EventId,
    /// `source`: the publishing service.
    pub source: String,
    /// `type`.
    pub event_type: String,
    /// `subject`: the stream the event was appended to.
    pub subject: String,
    /// `sequence`: its version in that stream.
    pub sequence: u64,
    /// `time`: when it happened.
    pub time: DateTime<Utc>,
    /// `correlationid` extension.
    pub correlation_id: Option<Uuid>,
    /// `causationid` extension.
    pub causation_id: Option<Uuid>,
    /// The W3C trace context of the command behind the event (the distributed-tracing extension `traceparent`):
    /// handlers continue that trace with [`continue_trace`](crate::telemetry::continue_trace).
    pub traceparent: Option<String>,
    /// The data.
    pub data: serde_json::Value,
}

/// A message that is not a CloudEvent from a relay: names the attribute that is missing or malformed (never its
/// value, nor the body's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a CloudEvent from a relay: {0}")]
pub struct ParseError(String);

const ID: &str = "id";
const SOURCE: &str = "source";
const TYPE: &str = "type";
const SUBJECT: &str = "subject";
const SEQUENCE: &str = "sequence";
const TIME: &str = "time";
const CORRELATION: &str = "correlationid";
const CAUSATION: &str = "causationid";
const TRACEPARENT: &str = "traceparent";

impl CloudEvent {
    /// Reads a CloudEvent from its attributes (`attribute` answers one by its name without binding prefix) and body.
    ///
    /// # Errors
    /// [`ParseError`] naming the missing or malformed attribute, or a body that is not JSON.
    pub fn parse(
        attribute: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<Self, ParseError> {
        let get =
            |name: &str| attribute(name).ok_or_else(|| ParseError(format!("missing `{name}`")));
        let bad = |name: &str| ParseError(format!("malformed `{name}`"));
        let uuid = |name: &str, text: String| Uuid::parse_str(&text).map_err(|_| bad(name));
        let optional = |name: &str| attribute(name).map(|v| uuid(name, v)).transpose();
        Ok(Self {
            id: EventId::from_uuid(uuid(ID, get(ID)?)?),
            source: get(SOURCE)?,
            event_type: get(TYPE)?,
            subject: get(SUBJECT)?,
            sequence: get(SEQUENCE)?.parse().map_err(|_| bad(SEQUENCE))?,
            time: DateTime::parse_from_rfc3339(&get(TIME)?)
                .map_err(|_| bad(TIME))?
                .to_utc(),
            correlation_id: optional(CORRELATION)?,
            causation_id: optional(CAUSATION)?,
            traceparent: attribute(TRACEPARENT),
            data: serde_json::from_slice(body)
                .map_err(|_| ParseError("the body is not JSON".to_owned()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{Metadata, Position, StreamId, Version};

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
            tags: Vec::new(),
        }
    }

    fn round_trip(message: &Outgoing) -> Result<CloudEvent, ParseError> {
        CloudEvent::parse(
            |name| {
                message
                    .attributes()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_owned())
            },
            &message.data,
        )
    }

    #[test]
    fn every_attribute_and_the_trace_context_travel() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let correlation = Uuid::new_v4();
        let event = IntegrationEvent::new("bank.deposited.v1", serde_json::json!({ "amount": 5 }));
        let record = recorded(
            Metadata::new()
                .with("traceparent", traceparent)
                .with_correlation_id(correlation),
        );
        let message = Outgoing::new("bank", &event, &record).unwrap();
        assert_eq!(message.key, "account-1");
        let received = round_trip(&message).unwrap();
        assert_eq!(received.id, record.event_id);
        assert_eq!(
            (received.source.as_str(), received.event_type.as_str()),
            ("bank", "bank.deposited.v1")
        );
        assert_eq!(
            (received.subject.as_str(), received.sequence),
            ("account-1", 3)
        );
        assert_eq!(received.traceparent.as_deref(), Some(traceparent));
        assert_eq!(received.correlation_id, Some(correlation));
        assert_eq!(received.data, serde_json::json!({ "amount": 5 }));

        let untraced = Outgoing::new("bank", &event, &recorded(Metadata::new())).unwrap();
        assert_eq!(round_trip(&untraced).unwrap().traceparent, None);
    }

    #[test]
    fn a_bad_message_names_the_attribute_never_its_value() {
        let secret = "4111-1111-1111-1111";
        let error = CloudEvent::parse(
            |name| match name {
                "id" => Some(secret.to_owned()),
                _ => None,
            },
            b"{}",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "not a CloudEvent from a relay: malformed `id`"
        );
        let error = CloudEvent::parse(|_| None, b"{}").unwrap_err();
        assert!(error.to_string().contains("missing `id`"));
    }
}
