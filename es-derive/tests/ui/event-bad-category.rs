#[derive(es_core::DomainEvent)]
#[event(category = "sales-order")]
enum Event {
    Happened,
}

fn main() {}
