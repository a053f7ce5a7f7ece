//! CloudEvents in AMQP binary mode: attributes as `cloudEvents_*` headers (the binding's application properties;
//! `cloudEvents:*` is read too), the content type in the message properties, the JSON body as the payload.

use es_core::integration::{CONTENT_TYPE, CloudEvent, Outgoing, ParseError};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// The headers and properties of `message`: persistent, JSON, its event id as the message id.
pub(crate) fn properties(message: &Outgoing) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in message.attributes() {
        if name != "datacontenttype" {
            headers.insert(
                ShortString::from(format!("cloudEvents_{name}")),
                AMQPValue::LongString(LongString::from(value.to_owned())),
            );
        }
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from(CONTENT_TYPE))
        .with_message_id(ShortString::from(message.id.to_string()))
        .with_headers(headers)
}

/// Reads a CloudEvent from a delivery's properties and body.
pub(crate) fn parse(properties: &BasicProperties, body: &[u8]) -> Result<CloudEvent, ParseError> {
    let headers = properties.headers().as_ref();
    CloudEvent::parse(
        |name| {
            let headers = headers?.inner();
            let value = ["cloudEvents_", "cloudEvents:"]
                .iter()
                .find_map(|prefix| headers.get(&ShortString::from(format!("{prefix}{name}"))))?;
            match value {
                AMQPValue::LongString(text) => {
                    std::str::from_utf8(text.as_bytes()).ok().map(str::to_owned)
                }
                AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
                _ => None,
            }
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
    fn attributes_travel_as_cloud_events_headers_of_a_persistent_message() {
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
        let properties = properties(&message);
        assert_eq!(properties.delivery_mode(), &Some(2));
        let headers = properties.headers().as_ref().unwrap().inner();
        assert!(headers.contains_key(&ShortString::from("cloudEvents_id")));
        let parsed = parse(&properties, &message.data).unwrap();
        assert_eq!((parsed.id, parsed.sequence), (record.event_id, 3));
    }
}
