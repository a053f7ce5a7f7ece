#[derive(es_core::DomainEvent)]
enum Event {
    #[event(rename = "")]
    Happened,
}

fn main() {}
