//! An order process manager for the SIGKILL test: runs the process manager on PostgreSQL, a little slowly (so kills land in the
//! middle of a step), until the store holds `requested` payment requests and `cancelled` cancelled orders; prints
//! `running`, then `done`.
//!
//! `process_worker <schema> <requested> <cancelled>`; the database is `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_trait::async_trait;
use es_core::evolution::EventCatalog;
use es_core::process::{CommandContext, CommandRouter, Outcome, ProcessRunner, RouteError};
use es_postgres::PgEventStore;
use examples::shop::{OrderProcess, ShopCommand, ShopRouter};
use tests::database_url;

/// The shop's router, pausing before each command.
struct Slow(ShopRouter<PgEventStore>);

#[async_trait]
impl CommandRouter for Slow {
    type Command = ShopCommand;
    async fn route(
        &self,
        command: &ShopCommand,
        context: &CommandContext,
    ) -> Result<Outcome, RouteError> {
        tokio::time::sleep(Duration::from_millis(3)).await;
        self.0.route(command, context).await
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, requested, cancelled] = &args[..] else {
        panic!("usage: process_worker <schema> <requested> <cancelled>");
    };
    let expected = [
        (
            "PaymentRequested",
            requested.parse::<u64>().expect("requested"),
        ),
        (
            "OrderCancelled",
            cancelled.parse::<u64>().expect("cancelled"),
        ),
    ];
    let store = PgEventStore::builder()
        .schema(schema)
        .connect(&database_url())
        .await
        .expect("connect");
    let running = ProcessRunner::new(
        OrderProcess,
        Slow(ShopRouter::new(store.clone())),
        store.clone(),
    )
    .timer_poll(Duration::from_secs(3600))
    .start(store.clone(), store.clone());
    println!("running");
    // Done is a fact of the domain, not a quiet moment: every expected outcome is stored.
    loop {
        let kinds = store.stored_event_types().await.expect("event types");
        let count = |t: &str| {
            kinds
                .iter()
                .filter(|k| k.event_type == t)
                .map(|k| k.count)
                .sum::<u64>()
        };
        if expected.iter().all(|(t, n)| count(t) == *n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
    println!("done");
}
