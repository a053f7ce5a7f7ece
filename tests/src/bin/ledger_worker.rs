//! A projection process for the crash and failover tests: runs the ledger projection on PostgreSQL until it has
//! caught up with `expected` events, then exits 0. Prints its state (`standby`, `running`) as it changes.
//!
//! `ledger_worker <schema> <expected events> <pause per event, ms> [lease, ms]`; the database is `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::ProjectionRunner;
use es_core::projection::ProjectionOptions;
use es_postgres::{PgEventStore, PgProjectionWorker};
use tests::database_url;
use tests::ledger::{PgLedger, report_until_applied};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (schema, expected, pause, lease) = match &args[..] {
        [_, schema, expected, pause] => (schema, expected, pause, 10_000),
        [_, schema, expected, pause, lease] => {
            (schema, expected, pause, lease.parse().expect("lease"))
        }
        _ => panic!(
            "usage: ledger_worker <schema> <expected events> <pause per event, ms> [lease, ms]"
        ),
    };
    let expected: i64 = expected.parse().expect("expected events");
    let store = PgEventStore::builder()
        .schema(schema)
        .connect(&database_url())
        .await
        .expect("connect");
    let mut ledger = PgLedger::create(&store).await;
    ledger.slow = Duration::from_millis(pause.parse().expect("pause"));
    let worker = PgProjectionWorker::new(
        &store,
        ledger.clone(),
        ProjectionOptions::default().batch_size(50),
    )
    .standby_poll(Duration::from_millis(100))
    .lease(Duration::from_millis(lease));
    let running = ProjectionRunner::new(store.clone()).with(worker).start();
    report_until_applied(running, expected, || ledger.applied(&store)).await;
    println!("done");
}
