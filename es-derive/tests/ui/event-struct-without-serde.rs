#[derive(es_core::DomainEvent)]
struct Happened {
    at: u64,
}

fn main() {}
