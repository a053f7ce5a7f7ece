use es_core::evolution::Upcaster;

// v1 → v2 is there, v2 → v3 is not: stored v2 events could never load.
const UPCASTERS: &[Upcaster] = &[Upcaster::new("Opened", 1, |p| p)];

#[derive(es_core::DomainEvent)]
#[event(upcasters = UPCASTERS)]
enum AccountEvent {
    #[event(version = 3)]
    Opened,
}

fn main() {}
