//! A worker process for the partition tests: runs its share of the partitioned ledger projection on PostgreSQL
//! until it is killed, and prints the partitions it runs whenever they change (`owns 0,3,5`; `owns -` for none).
//!
//! `partition_worker <schema> <partitions> <lease, ms> <worker name> <pause per batch, ms>`; the database is
//! `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::ProjectionRunner;
use es_core::projection::{ProjectionOptions, ProjectionState};
use es_postgres::{PgEventStore, PgPartitions};
use tests::database_url;
use tests::ledger::PgLedger;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, partitions, lease, name, pause] = &args[..] else {
        panic!(
            "usage: partition_worker <schema> <partitions> <lease, ms> <worker name> <pause per batch, ms>"
        );
    };
    let partitions: u32 = partitions.parse().expect("partitions");
    let store = PgEventStore::builder()
        .schema(schema)
        .max_connections(4)
        .connect(&database_url())
        .await
        .expect("connect");
    let mut ledger = PgLedger::create(&store).await;
    ledger.batched = true;
    ledger.batch_pause = Duration::from_millis(pause.parse().expect("pause"));
    let ledger = PgPartitions::new(
        &store,
        ledger,
        partitions,
        ProjectionOptions::default().batch_size(100),
    )
    .lease(Duration::from_millis(lease.parse().expect("lease")))
    .standby_poll(Duration::from_millis(100))
    .worker_name(name);
    let running = ProjectionRunner::new(store.clone())
        .with_all(ledger.workers())
        .start();
    let mut reported = None;
    loop {
        let mut owned = Vec::new();
        for partition in 0..partitions {
            match running
                .state(&format!("ledger#{partition}"))
                .expect("state")
            {
                ProjectionState::Running => owned.push(partition.to_string()),
                ProjectionState::Failed { error } => {
                    panic!("partition {partition} failed: {error}")
                }
                _ => {}
            }
        }
        let line = match owned.is_empty() {
            true => "-".to_owned(),
            false => owned.join(","),
        };
        if reported.as_ref() != Some(&line) {
            println!("owns {line}");
            reported = Some(line);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
