#[derive(es_core::DomainEvent)]
enum Event {
    #[event(version = 2, version = 3)]
    Happened,
}

fn main() {}
