//! The exactly-once worker's conformance suite: every store whose projections run on
//! [`TransactionalWorker`](es_core::backend::TransactionalWorker) passes it with one
//! [`worker_conformance_tests!`](crate::worker_conformance_tests) call. The cases run the ledger (each event must
//! count exactly once: a second application violates a key) in child processes that are SIGKILLed mid-batch, die
//! under a standby, or are SIGSTOPped past their lease and let go; and in this process for a rebuild and a poison
//! event. Every wait is bounded; none depends on one process being faster than another.

use std::time::Duration;

use async_trait::async_trait;
use es_core::backend::ProjectionWorker;
use es_core::projection::{FailurePolicy, ProjectionOptions, ProjectionState};
use es_core::{EventStore, ExpectedVersion, NewEvent, ProjectionRunner, StreamId};

use crate::child::{ChildProcess, kill_mid_work};
use crate::ledger::{LedgerEvent, POISON, Totals, post};

/// Events in the process cases.
pub const EVENTS: usize = 2_000;
/// The lease of the child processes, in milliseconds: how soon a standby takes over from a silent holder.
pub const LEASE_MS: u64 = 1_000;
/// The bound of every wait.
pub const WAIT: Duration = Duration::from_secs(120);

/// A store under the suite, with the ledger's tables created.
#[async_trait]
pub trait WorkerSuite: Sized + Send + Sync + 'static {
    /// The event store.
    type Store: EventStore + Clone + 'static;
    /// The store's exactly-once worker running the ledger.
    type Worker: ProjectionWorker;
    /// Whether a standby takes over while the holder is paused whatever it was doing. SQLite: not while the paused
    /// process holds the file's write lock (a batch in progress), which no other process can take meanwhile.
    const TAKES_OVER_FROM_ANY_PAUSE: bool;

    /// A fresh store with the ledger's tables.
    async fn fresh() -> Self;
    /// The store.
    fn store(&self) -> &Self::Store;
    /// A child process running the ledger until `expected` events are applied, `pause_ms` per event, with a lease of
    /// [`LEASE_MS`]; it prints `standby`, `running` as its state changes, and `done`.
    fn spawn(&self, expected: usize, pause_ms: u64) -> ChildProcess;
    /// The ledger's worker in this process; with `poisoned`, [`POISON`] fails.
    fn worker(&self, options: ProjectionOptions, poisoned: bool) -> Self::Worker;
    /// Rows in the ledger's applied table.
    async fn applied(&self) -> i64;
    /// The ledger's totals.
    async fn totals(&self) -> Totals;
}

/// A worker killed mid-batch again and again leaves the read model of a clean fold.
pub async fn killed_mid_batch_ends_exactly_once<S: WorkerSuite>() {
    let suite = S::fresh().await;
    let (expected, _) = post(suite.store(), "acct", EVENTS, 11, 7).await;
    // Batches of 50 at ~1 ms per event: a kill at a random moment lands inside a batch's transaction.
    let kills = kill_mid_work(
        5,
        || suite.spawn(EVENTS, 1),
        || suite.applied(),
        EVENTS as i64,
    )
    .await;
    suite.spawn(EVENTS, 0).finish(WAIT);
    assert_eq!(kills, 5);
    assert_eq!(suite.applied().await, EVENTS as i64);
    assert_eq!(
        suite.totals().await,
        expected,
        "a killed batch was applied twice or lost"
    );
}

/// A standby takes over when the active process dies, and applies the rest once.
pub async fn standby_takes_over<S: WorkerSuite>() {
    let suite = S::fresh().await;
    // Half the events before the active process starts, the rest only after it died: it cannot finish first.
    let (mut expected, _) = post(suite.store(), "acct", EVENTS / 2, 5, 10).await;
    let active = suite.spawn(EVENTS, 1);
    active.expect("running", WAIT);
    let standby = suite.spawn(EVENTS, 0);
    standby.expect("standby", WAIT);
    active.kill();
    let (rest, _) = post(suite.store(), "later", EVENTS - EVENTS / 2, 5, 10).await;
    expected.totals.extend(rest.totals);
    expected.counts.extend(rest.counts);
    standby.expect("running", WAIT);
    standby.finish(WAIT);
    assert_eq!(suite.applied().await, EVENTS as i64);
    assert_eq!(suite.totals().await, expected);
}

/// A holder paused past its lease (a stalled host) and let go after a standby took over commits nothing twice: the
/// two end with the read model of a clean fold.
pub async fn paused_holder_is_fenced<S: WorkerSuite>() {
    let suite = S::fresh().await;
    let (mut expected, _) = post(suite.store(), "acct", EVENTS / 2, 5, 10).await;
    let paused = suite.spawn(EVENTS, 1);
    paused.expect("running", WAIT);
    let standby = suite.spawn(EVENTS, 0);
    standby.expect("standby", WAIT);
    paused.signal("STOP");
    let standby = if S::TAKES_OVER_FROM_ANY_PAUSE {
        let (rest, _) = post(suite.store(), "later", EVENTS - EVENTS / 2, 5, 10).await;
        expected.totals.extend(rest.totals);
        expected.counts.extend(rest.counts);
        // The lease runs out; the standby takes over and finishes while the holder is still paused.
        standby.expect("running", WAIT);
        standby.finish(WAIT);
        assert_eq!(suite.applied().await, EVENTS as i64);
        None
    } else {
        // Paused in a batch, it may hold the file's write lock: then nobody can write (not even these appends)
        // until it goes on. Past its lease, the standby takes over if the lock was free.
        tokio::time::sleep(Duration::from_millis(3 * LEASE_MS)).await;
        Some(standby)
    };
    paused.signal("CONT");
    if let Some(standby) = standby {
        let (rest, _) = post(suite.store(), "later", EVENTS - EVENTS / 2, 5, 10).await;
        expected.totals.extend(rest.totals);
        expected.counts.extend(rest.counts);
        paused.finish(WAIT);
        standby.finish(WAIT);
    } else {
        paused.finish(WAIT);
    }
    assert_eq!(suite.applied().await, EVENTS as i64);
    assert_eq!(
        suite.totals().await,
        expected,
        "the paused holder applied a batch again"
    );
}

/// A rebuild ends with the read model of a clean run.
pub async fn rebuild_equals_a_clean_run<S: WorkerSuite>() {
    let suite = S::fresh().await;
    let (expected, last) = post(suite.store(), "acct", 500, 7, 5).await;
    let options = ProjectionOptions::default().batch_size(40);
    let running = ProjectionRunner::new(suite.store().clone())
        .with(suite.worker(options, true))
        .start();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(suite.totals().await, expected);
    running.rebuild("ledger").await.unwrap();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(suite.applied().await, 500);
    assert_eq!(suite.totals().await, expected, "the rebuild differs");
    running.shutdown().await;
}

/// A poison event is parked as a dead letter in the batch's transaction; the events around it count once, the
/// projection keeps running, and a redrive once the handler is fixed applies it once.
pub async fn poison_is_isolated<S: WorkerSuite>() {
    let suite = S::fresh().await;
    let (mut expected, _) = post(suite.store(), "acct", 300, 5, 10).await;
    let poison =
        NewEvent::from_domain(&LedgerEvent::Posted { amount: POISON }, Default::default()).unwrap();
    let poison_id = poison.event_id;
    let stream = StreamId::new("acct-poisoned").unwrap();
    suite
        .store()
        .append(&stream, ExpectedVersion::Any, vec![poison])
        .await
        .unwrap();
    let (rest, last) = post(suite.store(), "later", 300, 5, 10).await;
    expected.totals.extend(rest.totals);
    expected.counts.extend(rest.counts);
    let options = ProjectionOptions::default()
        .batch_size(100)
        .max_attempts(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .on_failure(FailurePolicy::DeadLetter);
    let running = ProjectionRunner::new(suite.store().clone())
        .with(suite.worker(options.clone(), true))
        .start();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(running.state("ledger").unwrap(), ProjectionState::Running);
    let letters = running.dead_letters("ledger").await.unwrap();
    assert_eq!(
        letters.iter().map(|l| l.event_id).collect::<Vec<_>>(),
        vec![poison_id]
    );
    assert_eq!(suite.applied().await, 600);
    assert_eq!(
        suite.totals().await,
        expected,
        "an event around the poison was lost or doubled"
    );
    running.shutdown().await;

    // Fixed (not poisoned any more), the redrive applies it, once.
    let running = ProjectionRunner::new(suite.store().clone())
        .with(suite.worker(options, false))
        .start();
    running.wait_for("ledger", last, WAIT).await.unwrap();
    assert_eq!(running.redrive("ledger").await.unwrap(), (1, 0));
    assert!(running.dead_letters("ledger").await.unwrap().is_empty());
    expected.totals.insert("acct-poisoned".to_owned(), POISON);
    expected.counts.insert("acct-poisoned".to_owned(), 1);
    assert_eq!(suite.applied().await, 601);
    assert_eq!(suite.totals().await, expected);
    running.shutdown().await;
}

/// The worker suite's tests for the store `$suite` (a [`WorkerSuite`]).
#[macro_export]
macro_rules! worker_conformance_tests {
    ($suite:ty) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn killed_mid_batch_ends_exactly_once() {
            $crate::worker_suite::killed_mid_batch_ends_exactly_once::<$suite>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn standby_takes_over() {
            $crate::worker_suite::standby_takes_over::<$suite>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn paused_holder_is_fenced() {
            $crate::worker_suite::paused_holder_is_fenced::<$suite>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn rebuild_equals_a_clean_run() {
            $crate::worker_suite::rebuild_equals_a_clean_run::<$suite>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn poison_is_isolated() {
            $crate::worker_suite::poison_is_isolated::<$suite>().await;
        }
    };
}
