#[derive(es_core::DomainEvent)]
enum Event {
    #[event(version = 0)]
    Happened,
}

fn main() {}
