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

/// Three stores opening one new file at the same moment, ten times over: each open succeeds and the file is migrated
/// once. (Without a lock between them, most rounds failed "table events already exists".) Separate stores have
/// separate connections and lock handles, as separate processes do.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn several_stores_opening_one_new_file_at_once_all_succeed() {
    for _ in 0..10 {
        let path = tests::fresh_sqlite_path();
        let opens = (0..3).map(|_| {
            let path = path.clone();
            tokio::spawn(async move { es_sqlite::SqliteEventStore::open(&path).await })
        });
        let stores: Vec<_> = futures::future::join_all(opens).await;
        for store in stores {
            let store = store
                .unwrap()
                .unwrap_or_else(|e| panic!("open failed: {e}"));
            store.close().await.unwrap();
        }
    }
}

/// After `close`, the database file alone (no `-wal` file beside it) holds every event: a copy of it is a backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_leaves_its_whole_history_in_the_database_file() {
    let store = sqlite_store().await;
    let stream = StreamId::new("acct-1").unwrap();
    for amount in 0..300 {
        store
            .append(&stream, ExpectedVersion::Any, vec![posting(amount)])
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    let copy = store.path().with_extension("copy.db");
    std::fs::copy(store.path(), &copy).unwrap();
    let copied = es_sqlite::SqliteEventStore::open(&copy).await.unwrap();
    let events = copied
        .read_all(es_core::Position::START, 1_000)
        .await
        .unwrap();
    assert_eq!(events.len(), 300);
    copied.close().await.unwrap();
}

/// A writer of another connection holding the file longer than the busy timeout, but less than twice it: the append
/// waits it out, as documented ("the busy timeout, then as long again"); the first wait used to use up the whole
/// bound, so the append failed after one timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_up_to_twice_the_busy_timeout_for_another_writer() {
    use sqlx::Connection;
    const BUSY: Duration = Duration::from_secs(2);
    let path = tests::fresh_sqlite_path();
    let store = es_sqlite::SqliteEventStore::builder()
        .busy_timeout(BUSY)
        .open(&path)
        .await
        .unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let append = {
        let store = store.clone();
        tokio::spawn(async move {
            let stream = StreamId::new("acct-1").unwrap();
            store
                .append(&stream, ExpectedVersion::Any, vec![posting(1)])
                .await
        })
    };
    // Held for one and a half timeouts: the middle of the documented bound.
    tokio::time::sleep(BUSY * 3 / 2).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    let appended = append.await.unwrap();
    assert!(appended.is_ok(), "{appended:?}");
    store.close().await.unwrap();
}
