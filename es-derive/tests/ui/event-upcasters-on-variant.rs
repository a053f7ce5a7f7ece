#[derive(es_core::DomainEvent)]
enum AccountEvent {
    #[event(upcasters = &[])]
    Opened,
}

fn main() {}
