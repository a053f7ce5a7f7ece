//! CloudEvents in NATS binary mode: attributes as `ce-*` headers (the trace context as `traceparent`), JSON data as
//! the body.

use async_nats::HeaderMap;
use es_core::integration::{CloudEvent, Outgoing, ParseError};

/// The header of CloudEvents attribute `name`.
fn header(name: &str) -> String {
    match name {
        "traceparent" => name.to_owned(),
        "datacontenttype" => "content-type".to_owned(),
        _ => format!("ce-{name}"),
    }
}

/// The headers of `message`, with its event id as `Nats-Msg-Id`.
pub(crate) fn headers(message: &Outgoing) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        message.id.to_string().as_str(),
    );
    for (name, value) in message.attributes() {
        headers.insert(header(name).as_str(), value);
    }
    headers
}

/// Reads a CloudEvent from a message's headers and body.
pub(crate) fn parse(headers: Option<&HeaderMap>, body: &[u8]) -> Result<CloudEvent, ParseError> {
    CloudEvent::parse(
        |name| {
            headers
                .and_then(|h| h.get(header(name).as_str()))
                .map(|v| v.as_str().to_owned())
        },
        body,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::Utc;
    use es_core::integration::IntegrationEvent;
    use es_core::{EventId, Metadata, Position, RecordedEvent, StreamId, Version};

    #[test]
    fn attributes_travel_as_ce_headers_and_the_trace_context_as_traceparent() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let record = RecordedEvent {
            stream_id: StreamId::new("account-1").unwrap(),
            version: Version::new(3),
            position: Position::new(7, 9),
            event_id: EventId::new(),
            event_type: "Deposited".to_owned(),
            schema_version: 1,
            payload: serde_json::json!({ "amount": 5 }),
            metadata: Metadata::new().with("traceparent", traceparent),
            recorded_at: Utc::now(),
            tags: Vec::new(),
        };
        let event = IntegrationEvent::new("bank.deposited.v1", serde_json::json!({ "amount": 5 }));
        let message = Outgoing::new("bank", &event, &record).unwrap();
        let headers = headers(&message);
        assert_eq!(headers.get("traceparent").unwrap().as_str(), traceparent);
        assert_eq!(
            headers.get("ce-type").unwrap().as_str(),
            "bank.deposited.v1"
        );
        assert_eq!(
            headers.get("content-type").unwrap().as_str(),
            "application/json"
        );
        assert_eq!(
            headers.get("Nats-Msg-Id").unwrap().as_str(),
            record.event_id.to_string()
        );
        let parsed = parse(Some(&headers), &message.data).unwrap();
        assert_eq!((parsed.id, parsed.sequence), (record.event_id, 3));
        assert_eq!(parsed.traceparent.as_deref(), Some(traceparent));
    }
}
