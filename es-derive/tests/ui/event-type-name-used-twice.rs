#[derive(es_core::DomainEvent)]
enum Event {
    Opened,
    #[event(rename = "Opened")]
    Reopened,
}

fn main() {}
