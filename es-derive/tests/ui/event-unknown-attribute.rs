#[derive(es_core::DomainEvent)]
enum Event {
    #[event(name = "Happened")]
    Happened,
}

fn main() {}
