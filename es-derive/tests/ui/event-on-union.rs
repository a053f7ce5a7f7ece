#[derive(es_core::DomainEvent)]
union Event {
    a: u32,
}

fn main() {}
