// Version 2 and no upcasters: stored version 1 events could only fail when read.
#[derive(es_core::DomainEvent)]
enum AccountEvent {
    #[event(version = 2)]
    Opened,
}

fn main() {}
