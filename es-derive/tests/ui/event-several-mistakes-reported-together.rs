#[derive(es_core::DomainEvent)]
enum Event {
    #[event(version = 0)]
    First,
    #[event(colour = "red")]
    Second,
    Third(u8, u8),
}

fn main() {}
