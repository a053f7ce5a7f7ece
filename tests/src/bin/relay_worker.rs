//! A relay process for the SIGKILL test: relays the bank's events of a schema to JetStream until its checkpoint
//! reaches `events` relayed events; prints `running`, then `done`.
//!
//! `relay_worker <schema> <subject prefix> <events>`; the database is `DATABASE_URL`, the broker `NATS_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::EventStore;
use es_core::projection::ProjectionOptions;
use es_nats::{NatsPublisher, Relay, RelayConfig};
use es_postgres::PgEventStore;
use tests::bank_relay::PublicAccountEvents;
use tests::{database_url, nats_url};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, prefix, events] = &args[..] else {
        panic!("usage: relay_worker <schema> <subject prefix> <events>");
    };
    let events: u64 = events.parse().expect("events");
    let store = PgEventStore::builder()
        .schema(schema)
        .connect(&database_url())
        .await
        .expect("connect");
    let publisher = NatsPublisher::connect(&nats_url(), RelayConfig::new(prefix))
        .await
        .expect("relay");
    let relay = Relay::new(prefix, PublicAccountEvents, publisher);
    let running = relay.start(
        store.clone(),
        store.clone(),
        ProjectionOptions::default().batch_size(50),
    );
    println!("running");
    let name = format!("relay-{prefix}");
    loop {
        let status = running.status(&name).await.expect("status");
        let relayed = match status.checkpoint {
            Some(checkpoint) => events - store.count_after(checkpoint).await.expect("count"),
            None => 0,
        };
        if relayed == events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
    println!("done");
}
