#[derive(es_core::DomainEvent)]
enum Event {}

fn main() {}
