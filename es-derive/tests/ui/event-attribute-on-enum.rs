#[derive(es_core::DomainEvent)]
#[event(version = 2)]
enum Event {
    Happened,
}

fn main() {}
