//! Faults under a transactional projection, each on a private PostgreSQL server the test starts (the shared one is
//! left alone): quick and slow restarts, every backend terminated at random moments (reads, appends, checkpoints,
//! lock acquisition), a locked table with its waiters terminated, a paused holder, and an open transaction holding
//! the feed back. The projection must carry on by itself each time, and the read model must end exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use es_core::projection::{ProjectionOptions, ProjectionState, RunnerError, RunningProjections};
use es_core::{EventStore, ExpectedVersion, NewEvent, Position, ProjectionRunner, StreamId};
use es_postgres::{PgEventStore, PgProjectionWorker};
use sqlx::{Connection, PgConnection};
use tests::child::ChildProcess;
use tests::ledger::{LedgerEvent, PgLedger, Totals};
use tests::private_pg::PrivatePostgres;

/// How long anything may take to come back; only keeps a broken recovery from hanging the suite.
const BOUND: Duration = Duration::from_secs(60);

async fn private_store(server: &PrivatePostgres, application: &str) -> PgEventStore {
    let url = format!("{}&application_name={application}", server.url());
    let store = PgEventStore::builder()
        .schema("es")
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn ledger_worker(store: &PgEventStore, ledger: &PgLedger) -> PgProjectionWorker<PgLedger> {
    PgProjectionWorker::new(
        store,
        ledger.clone(),
        ProjectionOptions::default().batch_size(50),
    )
    .standby_poll(Duration::from_millis(100))
}

/// Appends `postings` (stream, amount) one batch at a time, each retried with the same ids until it lands (the
/// store's idempotency makes a retry after a lost reply safe); records them in `expected`. Returns the last
/// position.
async fn post(store: &PgEventStore, postings: &[(String, i64)], expected: &mut Totals) -> Position {
    let stream = StreamId::new(&postings[0].0).unwrap();
    let events: Vec<NewEvent> = postings
        .iter()
        .map(|(_, amount)| {
            NewEvent::from_domain(&LedgerEvent::Posted { amount: *amount }, Default::default())
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + BOUND;
    let written = loop {
        match store
            .append(&stream, ExpectedVersion::Any, events.clone())
            .await
        {
            Ok(written) => break written,
            Err(error) => {
                assert!(Instant::now() < deadline, "an append never landed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for (stream, amount) in postings {
        *expected.totals.entry(stream.clone()).or_default() += amount;
        *expected.counts.entry(stream.clone()).or_default() += 1;
    }
    written.last_position
}

/// Posts `batches` batches of 5 over 10 streams, pausing between them so the writing spans the faults; returns
/// what it posted and the last position.
async fn write_steadily(store: PgEventStore, batches: usize) -> (Totals, Position) {
    let mut expected = Totals::default();
    let mut last = Position::START;
    for b in 0..batches {
        let stream = format!("acct-{}", b % 10);
        let postings: Vec<(String, i64)> = (0..5)
            .map(|k| (stream.clone(), ((b * 5 + k) % 97) as i64 + 1))
            .collect();
        last = post(&store, &postings, &mut expected).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (expected, last)
}

/// Maintenance gone wrong: the events table locked for a while, every other backend terminated meanwhile.
async fn lock_and_terminate(server: &PrivatePostgres) {
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE es.events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate_all(Some(pid)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.commit().await.unwrap();
    admin.close().await.unwrap();
}

/// Appends a marker posting and returns how long the projection took to pass it (its time to resume).
async fn time_to_pass_a_new_event(
    store: &PgEventStore,
    running: &RunningProjections,
    expected: &mut Totals,
) -> Duration {
    let started = Instant::now();
    let marker = post(store, &[("marker-1".to_owned(), 1)], expected).await;
    running.wait_for("ledger", marker, BOUND).await.unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_projection_resumes_by_itself_after_every_kind_of_outage() {
    let server = PrivatePostgres::start();
    let store = private_store(&server, "faults").await;
    let mut ledger = PgLedger::create(&store).await;
    ledger.slow = Duration::from_micros(500);
    let running = ProjectionRunner::new(store.clone())
        .with(ledger_worker(&store, &ledger))
        .start();
    let writer = tokio::spawn(write_steadily(store.clone(), 500));
    let mut markers = Totals::default();
    let mut resumed = Vec::new();

    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    resumed.push((
        "quick restart",
        time_to_pass_a_new_event(&store, &running, &mut markers).await,
    ));
    for round in 0..5u64 {
        tokio::time::sleep(Duration::from_millis(50 + fastrand::u64(0..250))).await;
        let killed = server.terminate_all(None).await;
        assert!(killed > 0, "round {round}: nothing to terminate");
    }
    resumed.push((
        "backends terminated 5 times",
        time_to_pass_a_new_event(&store, &running, &mut markers).await,
    ));
    server.stop();
    // An idle worker notices at its next heartbeat (every lease/3), within the connect timeout.
    let down = Instant::now();
    let noticed_within = es_postgres::DEFAULT_LEASE / 3
        + es_postgres::DEFAULT_CONNECT_TIMEOUT
        + Duration::from_secs(1);
    while !matches!(
        running.state("ledger").unwrap(),
        ProjectionState::Lost { .. }
    ) {
        assert!(
            down.elapsed() < noticed_within,
            "a projection without a server must say it lost it, not {:?}",
            running.state("ledger").unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(down.elapsed())).await;
    server.start_again();
    resumed.push((
        "slow restart (2 s down)",
        time_to_pass_a_new_event(&store, &running, &mut markers).await,
    ));
    lock_and_terminate(&server).await;
    resumed.push((
        "locked table, backends terminated",
        time_to_pass_a_new_event(&store, &running, &mut markers).await,
    ));

    let (mut expected, last) = writer.await.unwrap();
    for (stream, total) in markers.totals {
        expected.totals.insert(stream.clone(), total);
        expected
            .counts
            .insert(stream.clone(), markers.counts[&stream]);
    }
    // Not `store.head()`: the projection's own open batch transaction holds the feed's horizon back, so the head
    // can lag the last acknowledged append (that race lost the writer's last batch here under load).
    running.wait_for("ledger", last, BOUND).await.unwrap();
    assert_eq!(running.state("ledger").unwrap(), ProjectionState::Running);
    let applied = ledger.totals(&store).await;
    if applied != expected {
        // Tell "acknowledged but not stored" from "stored but not applied".
        let mut stored = HashMap::<String, i64>::new();
        for event in store.read_all(Position::START, usize::MAX).await.unwrap() {
            *stored.entry(event.stream_id.to_string()).or_default() += 1;
        }
        panic!(
            "an event was applied twice or lost: applied {applied:?}, acknowledged {expected:?}, stored {stored:?}"
        );
    }
    let events = expected.counts.values().sum::<i64>();
    assert_eq!(ledger.applied(&store).await, events);
    for (fault, took) in &resumed {
        println!("resumed after {fault}: {took:?}");
    }
    let started = Instant::now();
    running.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The holder's lock backend, as the server shows it.
async fn lock_holder_pid(server: &PrivatePostgres, application: &str) -> i32 {
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    let pid = sqlx::query_scalar(
        "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
    )
    .bind(application)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    pid
}

async fn until_state(
    running: &RunningProjections,
    accept: impl Fn(&ProjectionState) -> bool,
) -> ProjectionState {
    let deadline = Instant::now() + BOUND;
    loop {
        let state = running.state("ledger").unwrap();
        if accept(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "still {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_names_the_holder_refuses_control_at_once_and_takes_over_when_the_lock_is_lost() {
    let server = PrivatePostgres::start();
    let (store_a, store_b) = (
        private_store(&server, "worker-a").await,
        private_store(&server, "worker-b").await,
    );
    let ledger = PgLedger::create(&store_a).await;
    let mut expected = Totals::default();
    let postings: Vec<(String, i64)> = (0..100).map(|i| ("acct-1".to_owned(), i)).collect();
    let last = post(&store_a, &postings, &mut expected).await;
    let a = ProjectionRunner::new(store_a.clone())
        .with(ledger_worker(&store_a, &ledger))
        .start();
    a.wait_for("ledger", last, BOUND).await.unwrap();
    let b = ProjectionRunner::new(store_b.clone())
        .with(ledger_worker(&store_b, &ledger))
        .start();

    let holder_pid = lock_holder_pid(&server, "worker-a").await;
    let standby = until_state(&b, |s| {
        matches!(s, ProjectionState::Standby { holder: Some(_) })
    })
    .await;
    let ProjectionState::Standby {
        holder: Some(holder),
    } = standby
    else {
        unreachable!()
    };
    assert_eq!(holder.pid, Some(holder_pid));
    assert_eq!(holder.application_name.as_deref(), Some("worker-a"));
    assert_eq!(holder.client_addr.as_deref(), Some("127.0.0.1"));
    assert!(holder.since.is_some());

    // Control requests to the standby answer at once, and are not kept for later.
    let asked = Instant::now();
    let refused = tokio::time::timeout(Duration::from_secs(5), b.rebuild("ledger"))
        .await
        .expect("rebuild on a standby hung");
    assert!(
        matches!(refused, Err(RunnerError::NotActive { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        b.dead_letters("ledger").await,
        Err(RunnerError::NotActive { .. })
    ));
    println!("standby refused rebuild in {:?}", asked.elapsed());

    // The active instance's lock connection dies: the standby takes over, the old one goes standby behind it.
    let mut admin = PgConnection::connect(&server.url()).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(holder_pid)
        .execute(&mut admin)
        .await
        .unwrap();
    let lost_at = Instant::now();
    until_state(&b, |s| *s == ProjectionState::Running).await;
    println!(
        "standby took over {:?} after the lock was lost",
        lost_at.elapsed()
    );
    let state = until_state(&a, |s| {
        matches!(s, ProjectionState::Standby { holder: Some(h) } if h.application_name.as_deref() == Some("worker-b"))
    })
    .await;
    assert!(matches!(state, ProjectionState::Standby { .. }));

    let more: Vec<(String, i64)> = (0..50).map(|i| ("acct-2".to_owned(), i)).collect();
    let last = post(&store_a, &more, &mut expected).await;
    b.wait_for("ledger", last, BOUND).await.unwrap();
    assert_eq!(
        ledger.totals(&store_a).await,
        expected,
        "the refused rebuild ran later, or an event was applied twice"
    );

    for running in [a, b] {
        let started = Instant::now();
        running.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shutdown took {:?}",
            started.elapsed()
        );
    }
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_holder_loses_the_projection_within_its_lease() {
    const EVENTS: usize = 1_500;
    const LEASE: Duration = Duration::from_secs(2);
    let server = PrivatePostgres::start();
    let store = private_store(&server, "standby").await;
    let ledger = PgLedger::create(&store).await;
    let mut expected = Totals::default();
    for b in 0..EVENTS / 50 {
        let postings: Vec<(String, i64)> = (0..50)
            .map(|k| (format!("acct-{}", b % 7), (b * 50 + k) as i64 % 13 + 1))
            .collect();
        post(&store, &postings, &mut expected).await;
    }
    let holder = ChildProcess::spawn_on(
        env!("CARGO_BIN_EXE_ledger_worker"),
        &[
            "es",
            &EVENTS.to_string(),
            "2",
            &LEASE.as_millis().to_string(),
        ],
        &format!("{}&application_name=paused-holder", server.url()),
    );
    holder.expect("running", BOUND);
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.signal("STOP");
    let paused_at = Instant::now();
    let standby = ProjectionRunner::new(store.clone())
        .with(ledger_worker(&store, &ledger).lease(LEASE))
        .start();
    until_state(&standby, |s| *s == ProjectionState::Running).await;
    let took = paused_at.elapsed();
    println!("took over {took:?} after the holder was paused (lease {LEASE:?}, poll 100 ms)");
    assert!(
        took < LEASE + Duration::from_secs(5),
        "takeover took {took:?}, lease {LEASE:?}"
    );
    assert!(
        ledger.applied(&store).await < EVENTS as i64,
        "the holder finished before it was paused"
    );
    // The paused holder wakes up to a dead connection: it can commit nothing more, and goes standby.
    holder.signal("CONT");
    holder.expect("standby", BOUND);
    let head = store.head().await.unwrap().unwrap();
    standby.wait_for("ledger", head, BOUND).await.unwrap();
    assert_eq!(ledger.applied(&store).await, EVENTS as i64);
    assert_eq!(ledger.totals(&store).await, expected);
    standby.shutdown().await;
    holder.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holding_the_feed_back_shows_in_the_lag_and_is_named() {
    let server = PrivatePostgres::start();
    let store = private_store(&server, "feed").await;
    let ledger = PgLedger::create(&store).await;
    let mut expected = Totals::default();
    let first = post(&store, &[("acct-1".to_owned(), 1)], &mut expected).await;
    let running = ProjectionRunner::new(store.clone())
        .with(ledger_worker(&store, &ledger))
        .start();
    running.wait_for("ledger", first, BOUND).await.unwrap();

    let url = format!("{}&application_name=forgotten-tx", server.url());
    let mut open = PgConnection::connect(&url).await.unwrap();
    let mut tx = open.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .unwrap();
    let postings: Vec<(String, i64)> = (0..10).map(|i| ("acct-2".to_owned(), i)).collect();
    post(&store, &postings, &mut expected).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = running.status("ledger").await.unwrap();
    assert_eq!(status.lag_events, 10, "{status:?}");
    let held = status.held_back.expect("held back events are named");
    assert_eq!(held.events, 10);
    assert_eq!(held.application_name.as_deref(), Some("forgotten-tx"));
    assert_eq!(held.state.as_deref(), Some("idle in transaction"));
    assert!(held.pid.is_some() && held.age.is_some());

    tx.rollback().await.unwrap();
    let head = store.head().await.unwrap().unwrap();
    running.wait_for("ledger", head, BOUND).await.unwrap();
    let status = running.status("ledger").await.unwrap();
    assert_eq!((status.lag_events, status.held_back), (0, None));
    assert_eq!(ledger.totals(&store).await, expected);
    running.shutdown().await;
}
