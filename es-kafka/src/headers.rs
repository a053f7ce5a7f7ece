//! CloudEvents in Kafka binary mode: attributes as `ce_*` headers, `content-type` for the data, the JSON body as
//! the value, the stream id as the key.

use es_core::integration::{CloudEvent, Outgoing, ParseError};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

/// The header of CloudEvents attribute `name`.
fn header(name: &str) -> String {
    match name {
        "datacontenttype" => "content-type".to_owned(),
        _ => format!("ce_{name}"),
    }
}

/// The headers of `message`.
pub(crate) fn headers(message: &Outgoing) -> OwnedHeaders {
    message
        .attributes()
        .fold(OwnedHeaders::new(), |headers, (name, value)| {
            headers.insert(Header {
                key: &header(name),
                value: Some(value),
            })
        })
}

/// Reads a CloudEvent from a record's headers and value.
pub(crate) fn parse(
    headers: Option<&BorrowedHeaders>,
    body: &[u8],
) -> Result<CloudEvent, ParseError> {
    CloudEvent::parse(
        |name| {
            let wanted = header(name);
            headers?
                .iter()
                .find(|h| h.key == wanted)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
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
    fn attributes_travel_as_ce_underscore_headers() {
        let record = RecordedEvent {
            stream_id: StreamId::new("account-1").unwrap(),
            version: Version::new(3),
            position: Position::new(7, 9),
            event_id: EventId::new(),
            event_type: "Deposited".to_owned(),
            schema_version: 1,
            payload: serde_json::json!({ "amount": 5 }),
            metadata: Metadata::new(),
            recorded_at: Utc::now(),
            tags: Vec::new(),
        };
        let event = IntegrationEvent::new("bank.deposited.v1", serde_json::json!({ "amount": 5 }));
        let message = Outgoing::new("bank", &event, &record).unwrap();
        let headers = headers(&message);
        let names: Vec<&str> = headers.iter().map(|h| h.key).collect();
        assert!(names.contains(&"ce_id") && names.contains(&"ce_specversion"));
        assert!(names.contains(&"content-type"));
        let parsed = parse(Some(headers.as_borrowed()), &message.data).unwrap();
        assert_eq!((parsed.id, parsed.sequence), (record.event_id, 3));
        assert_eq!(parsed.subject, "account-1");
    }
}
