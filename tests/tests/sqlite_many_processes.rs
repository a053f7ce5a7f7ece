//! SQLite under several processes: the active projection keeps its lease under steady traffic (a committed batch
//! renews it), several processes may open (and migrate) one new file at once, and a closed store leaves its whole
//! history in the main database file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use es_core::projection::{ProjectionOptions, ProjectionState};
use es_core::{EventStore, ExpectedVersion, NewEvent, ProjectionRunner, StreamId};
use es_sqlite::SqliteProjectionWorker;
use tests::ledger::LedgerEvent;
use tests::sqlite_ledger::SqliteLedger;
use tests::sqlite_store;

fn posting(amount: i64) -> NewEvent {
    NewEvent::from_domain(&LedgerEvent::Posted { amount }, Default::default()).unwrap()
}

/// One event every 100 ms for 2.5 leases, each handled in a batch of its own: the runner sends no heartbeat while
/// batches come (a batch shows the worker alive), so the batches must renew the lease. It used to run out after one
/// lease: the instance went `lost` and took the lease again, over and over (a standby would have taken over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_steady_traffic_the_active_sqlite_projection_keeps_its_lease() {
    const LEASE: Duration = Duration::from_secs(2);
    let store = sqlite_store().await;
    let ledger = SqliteLedger::create(&store).await;
    let worker =
        SqliteProjectionWorker::new(&store, ledger, ProjectionOptions::default()).lease(LEASE);
    let running = Arc::new(ProjectionRunner::new(store.clone()).with(worker).start());
    let stream = StreamId::new("acct-1").unwrap();
    let first = store
        .append(&stream, ExpectedVersion::Any, vec![posting(1)])
        .await
        .unwrap();
    running
        .wait_for("ledger", first.last_position, Duration::from_secs(30))
        .await
        .unwrap();

    // Watches every state the projection passes through while the traffic runs.
    let lost = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (running, lost, done) = (Arc::clone(&running), Arc::clone(&lost), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                if running.state("ledger").unwrap() != ProjectionState::Running {
                    lost.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let rounds = LEASE.as_millis() as usize * 5 / 2 / 100;
    for amount in 0..rounds {
        let written = store
            .append(&stream, ExpectedVersion::Any, vec![posting(amount as i64)])
            .await
            .unwrap();
        running
            .wait_for("ledger", written.last_position, Duration::from_secs(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    assert!(
        !lost.load(Ordering::SeqCst),
        "the projection left `running` under steady traffic"
    );
    Arc::try_unwrap(running).unwrap().shutdown().await;
}
