#[derive(es_core::DomainEvent)]
enum Event {
    Moved {
        #[serde(rename = "xx")]
        x: i32,
    },
}

fn main() {}
