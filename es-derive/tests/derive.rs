//! Runtime behaviour of the generated `DomainEvent` impls.

#![allow(clippy::unwrap_used)]

use es_core::DomainEvent;
use es_core::store::DecodeError;
use serde_json::json;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Moved {
    x: i32,
    y: i32,
}

#[derive(Debug, PartialEq, DomainEvent)]
enum Ship {
    Launched,
    #[event(rename = "ship.moved", version = 2, since = 2)]
    Moved(Moved),
    Renamed {
        name: String,
        previous: Option<String>,
    },
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, DomainEvent)]
#[event(rename = "Pinged", version = 3, since = 3)]
struct Ping {
    at: u64,
}

fn round_trip<E: DomainEvent + std::fmt::Debug + PartialEq>(event: E) -> serde_json::Value {
    let payload = event.encode().unwrap();
    let back = E::decode(event.event_type(), event.schema_version(), &payload).unwrap();
    assert_eq!(back, event);
    // Straight from the text, as loads decode: the same event.
    let text = payload.to_string();
    let from_text = E::decode_str(event.event_type(), event.schema_version(), &text).unwrap();
    assert_eq!(from_text, event);
    payload
}

#[test]
fn decoding_from_text_fails_exactly_as_decoding_a_value_does() {
    let cases = [
        ("Nope", 1, r#"{}"#),
        ("Renamed", 2, r#"{"name": "a", "previous": null}"#),
        ("Renamed", 1, r#"{"name": 7}"#),
        ("Pinged", 3, r#"{"at": "soon"}"#),
    ];
    for (event_type, version, text) in cases {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        // The same error, serde's reason included; only a text parse knows the line and column.
        let without_place =
            |e: DecodeError| e.to_string().split(" at line ").next().map(str::to_owned);
        let from_value = Ship::decode(event_type, version, &value).map_err(without_place);
        let from_text = Ship::decode_str(event_type, version, text).map_err(without_place);
        assert!(from_value.is_err(), "{event_type} v{version}");
        assert_eq!(from_text, from_value, "{event_type} v{version}");
    }
    let ping = Ping::decode_str("Pinged", 3, r#"{"at": "soon"}"#);
    assert!(
        matches!(
            ping,
            Err(DecodeError::Payload {
                event_type: "Pinged",
                ..
            })
        ),
        "{ping:?}"
    );
}

#[test]
fn unit_variants_store_an_empty_object() {
    assert_eq!(round_trip(Ship::Launched), json!({}));
    assert_eq!(Ship::Launched.event_type(), "Launched");
    assert_eq!(Ship::Launched.schema_version(), 1);
}

#[test]
fn newtype_variants_store_the_inner_value() {
    let event = Ship::Moved(Moved { x: 1, y: -2 });
    assert_eq!(event.event_type(), "ship.moved");
    assert_eq!(event.schema_version(), 2);
    assert_eq!(round_trip(event), json!({ "x": 1, "y": -2 }));
}

#[test]
fn named_variants_store_an_object_of_their_fields() {
    let event = Ship::Renamed {
        name: "B".into(),
        previous: None,
    };
    assert_eq!(round_trip(event), json!({ "name": "B", "previous": null }));
    // A missing optional field decodes as None, like serde does.
    let decoded = Ship::decode("Renamed", 1, &json!({ "name": "C" })).unwrap();
    assert_eq!(
        decoded,
        Ship::Renamed {
            name: "C".into(),
            previous: None
        }
    );
}

#[test]
fn structs_are_one_event_type() {
    assert_eq!(Ping::EVENT_TYPES, ["Pinged"]);
    assert_eq!(round_trip(Ping { at: 5 }), json!({ "at": 5 }));
}

#[test]
fn unknown_types_wrong_versions_and_bad_payloads_are_typed_errors() {
    let error = Ship::decode("Sunk", 1, &json!({})).unwrap_err();
    assert!(
        matches!(&error, DecodeError::UnknownType { event_type, known } if event_type == "Sunk" && known.len() == 3)
    );
    assert_eq!(
        error.to_string(),
        "unknown event type `Sunk`; known types: [\"Launched\", \"ship.moved\", \"Renamed\"]"
    );

    let error = Ship::decode("ship.moved", 1, &json!({ "x": 1, "y": 2 })).unwrap_err();
    assert!(matches!(
        error,
        DecodeError::SchemaVersion {
            event_type: "ship.moved",
            stored: 1,
            expected: 2
        }
    ));

    let error = Ship::decode("Renamed", 1, &json!({ "name": 7 })).unwrap_err();
    assert!(matches!(
        error,
        DecodeError::Payload {
            event_type: "Renamed",
            ..
        }
    ));

    assert!(matches!(
        Ping::decode("Ping", 3, &json!({ "at": 1 })),
        Err(DecodeError::UnknownType { .. })
    ));
    assert!(matches!(
        Ping::decode("Pinged", 2, &json!({ "at": 1 })),
        Err(DecodeError::SchemaVersion { .. })
    ));
}

#[test]
fn categories_come_from_the_type_attribute() {
    #[derive(DomainEvent)]
    #[event(category = "order", category = "archived")]
    enum OrderEvent {
        Shipped,
    }
    #[derive(DomainEvent)]
    enum AnyEvent {
        Happened,
    }
    assert_eq!(OrderEvent::CATEGORIES, ["order", "archived"]);
    assert!(AnyEvent::CATEGORIES.is_empty());
}

#[test]
fn an_aggregate_lends_its_category() {
    #[derive(Default, Clone)]
    struct Parcel;
    impl es_core::Aggregate for Parcel {
        const CATEGORY: &'static str = "parcel";
        type Event = ParcelEvent;
        type Command = ();
        type Error = std::convert::Infallible;
        fn handle(&self, _: &()) -> Result<Vec<ParcelEvent>, Self::Error> {
            Ok(vec![])
        }
        fn apply(self, _: &ParcelEvent) -> Self {
            self
        }
    }
    #[derive(DomainEvent)]
    #[event(aggregate = Parcel, category = "returns")]
    enum ParcelEvent {
        Sent,
    }
    assert_eq!(ParcelEvent::CATEGORIES, ["parcel", "returns"]);
}
