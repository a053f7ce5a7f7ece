//! An order-saga process for the SIGKILL test: runs the saga on PostgreSQL, a little slowly (so kills land in the
//! middle of a step), until it has handled every event; prints `running`, then `done`.
//!
//! `saga_worker <schema>`; the database is `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_trait::async_trait;
use es_core::{CommandContext, CommandRouter, EventStore, Outcome, ProcessRunner, RouteError};
use es_postgres::PgEventStore;
use examples::shop::{OrderSaga, ShopCommand, ShopRouter};
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
    let schema = std::env::args()
        .nth(1)
        .expect("usage: saga_worker <schema>");
    let store = PgEventStore::builder()
        .schema(&schema)
        .connect(&database_url())
        .await
        .expect("connect");
    let running = ProcessRunner::new(
        OrderSaga,
        Slow(ShopRouter::new(store.clone())),
        store.clone(),
    )
    .timer_poll(Duration::from_secs(3600))
    .start(store.clone(), store.clone());
    println!("running");
    let mut last = None;
    loop {
        let head = store.head().await.expect("head");
        if head == last && running.status().await.expect("status").lag_events == 0 {
            break;
        }
        if let Some(head) = head {
            running
                .wait_for(head, Duration::from_secs(120))
                .await
                .expect("wait");
        }
        last = head;
    }
    running.shutdown().await;
    println!("done");
}
