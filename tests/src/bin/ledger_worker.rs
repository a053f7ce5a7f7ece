//! A projection process for the crash and failover tests: runs the ledger projection on PostgreSQL until it has
//! caught up with `expected` events, then exits 0. Prints its state (`standby`, `running`) as it changes.
//!
//! `ledger_worker <schema> <expected events> <pause per event, ms> [lease, ms]`; the database is `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::ProjectionRunner;
use es_core::projection::{ProjectionOptions, ProjectionState};
use es_postgres::{PgEventStore, PgProjectionWorker};
use tests::database_url;
use tests::ledger::PgLedger;

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
    let mut reported = None;
    loop {
        let status = running.status("ledger").await.expect("status");
        let state = match status.state {
            ProjectionState::Standby { .. } => "standby",
            ProjectionState::Running => "running",
            ProjectionState::Lost { .. } => "lost",
            other => panic!("projection ended: {other:?}"),
        };
        if reported != Some(state) {
            println!("{state}");
            reported = Some(state);
        }
        if state == "running" && status.lag_events == 0 && ledger.applied(&store).await == expected
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
    println!("done");
}
