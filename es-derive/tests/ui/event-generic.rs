#[derive(es_core::DomainEvent)]
enum Event<T> {
    Happened(T),
}

fn main() {}
