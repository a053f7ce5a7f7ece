use es_core::evolution::Upcaster;

// Upcasters for another type only: nothing leads `Opened` from version 1 to version 2.
const UPCASTERS: &[Upcaster] = &[Upcaster::new("Closed", 1, |p| p)];

#[derive(es_core::DomainEvent)]
#[event(upcasters = UPCASTERS)]
enum AccountEvent {
    #[event(version = 2)]
    Opened,
    #[event(version = 2)]
    Closed,
}

fn main() {}
