//! A relay process for the SIGKILL cases of the relay suite: relays the bank's events of a schema to a broker until
//! its checkpoint reaches the store's head; prints `running`, then `done`.
//!
//! `relay_worker <nats|kafka|rabbitmq> <broker url> <schema> <channel>`; the database is `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::EventStore;
use es_core::integration::Relay;
use es_postgres::PgEventStore;
use tests::bank_relay::PublicAccountEvents;
use tests::brokers::{AnyPublisher, Kind};
use tests::database_url;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, url, schema, channel] = &args[..] else {
        panic!("usage: relay_worker <nats|kafka|rabbitmq> <broker url> <schema> <channel>");
    };
    let store = PgEventStore::builder()
        .schema(schema)
        .connect(&database_url())
        .await
        .expect("connect");
    let head = store.head().await.expect("head").expect("events to relay");
    let publisher = AnyPublisher::connect(Kind::named(kind), url, channel).await;
    let relay = Relay::new(channel, PublicAccountEvents, publisher);
    let name = relay.name();
    let running = relay.start(store.clone(), store.clone(), tests::relay_suite::options());
    println!("running");
    running
        .wait_for(&name, head, Duration::from_secs(600))
        .await
        .expect("the relay reached the head");
    running.shutdown().await;
    println!("done");
}
