#[derive(es_core::DomainEvent)]
enum Event {
    #[event(version = "2")]
    Happened,
    #[event(version = 99999999999)]
    Overflowed,
}

fn main() {}
