use es_core::DomainEvent;

#[derive(serde::Serialize, serde::Deserialize)]
struct Moved {
    x: i32,
}

#[derive(DomainEvent)]
enum Event {
    Unit,
    // `since`: never stored at an older version, so no upcaster is needed.
    #[event(version = 3, since = 3)]
    Named { a: String, b: Option<u64> },
    #[event(rename = "ship.moved", version = 2, since = 2)]
    Newtype(Moved),
    #[event(rename = "Weird name with spaces")]
    Renamed,
}

#[derive(serde::Serialize, serde::Deserialize, DomainEvent)]
#[event(rename = "standalone", version = 4, since = 4)]
struct Standalone {
    value: u8,
}

#[derive(serde::Serialize, serde::Deserialize, DomainEvent)]
struct Plain;

#[derive(serde::Serialize, serde::Deserialize, DomainEvent)]
#[event(rename = "reading", version = 2)]
#[event(upcasters = &[es_core::evolution::Upcaster::new("reading", 1, |p| p)])]
struct Reading {
    value: u8,
}

fn main() {
    assert_eq!(Event::EVENT_TYPES.len(), 4);
    assert_eq!(Standalone { value: 1 }.schema_version(), 4);
    assert_eq!(Reading::UPCASTERS.len(), 1);
    assert_eq!(Plain.event_type(), "Plain");
}
