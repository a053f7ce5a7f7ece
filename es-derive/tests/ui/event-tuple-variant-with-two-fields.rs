#[derive(es_core::DomainEvent)]
enum Event {
    Moved(i32, i32),
}

fn main() {}
