#[derive(es_core::DomainEvent)]
enum Event {
    #[event(aggregate = Order)]
    Happened,
}

fn main() {}
