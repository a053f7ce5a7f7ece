//! The global order on PostgreSQL never skips or repeats an event: under concurrent writers, out-of-order
//! commits, rolled-back writers that leave holes, and long transactions; read from the primary, and from a hot
//! standby (`feed_from`) of a private primary the test starts, where a replica that lags only delays the feed.
//!
//! Run it against your own database: `DATABASE_URL=postgres://... cargo test -p tests --test postgres_no_skip`.
//! It works in fresh schemas of its own (`es_test_*`) and touches nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use es_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId, Version,
};
use es_postgres::PgEventStore;
use futures::StreamExt;
use sqlx::Connection;
use tests::private_pg::PrivatePostgres;
use tests::{append_in_open_transaction, database_url, pg_store};

const PATIENCE: Duration = Duration::from_secs(60);

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Tested", 1, serde_json::json!({ "n": n }))
}

/// A live reader from the start of the store, collecting what it sees.
struct Reader {
    events: es_core::store::EventStream,
    seen: Vec<RecordedEvent>,
}

impl Reader {
    fn start(store: &PgEventStore) -> Self {
        Self {
            events: store.subscribe_all(Position::START),
            seen: Vec::new(),
        }
    }

    async fn next(&mut self) -> RecordedEvent {
        let event = tokio::time::timeout(PATIENCE, self.events.next())
            .await
            .expect("the reader waited too long")
            .expect("the subscription ended")
            .expect("the subscription failed");
        self.seen.push(event.clone());
        event
    }

    /// Asserts that nothing arrives within `wait` (the reader must be holding back).
    async fn nothing_for(&mut self, wait: Duration) {
        if let Ok(Some(event)) = tokio::time::timeout(wait, self.events.next()).await {
            panic!("the reader delivered {event:?} while an earlier writer was still open");
        }
    }
}

async fn connection(primary: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(primary)
        .await
        .expect("a second connection")
}

/// A private primary and its hot standby, and a store on the primary that reads its feed from the standby.
async fn replicated() -> (PrivatePostgres, PrivatePostgres, PgEventStore) {
    let primary = PrivatePostgres::start();
    let standby = primary.standby();
    let store = PgEventStore::builder()
        .schema("es")
        .feed_from(standby.url())
        .connect(&primary.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // The standby replays the migrations a moment later: wait until it has replayed everything written so far.
    let mut on_primary = connection(&primary.url()).await;
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut on_primary)
        .await
        .unwrap();
    let mut replica = connection(&standby.url()).await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let replayed: Option<bool> =
            sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                .bind(&written)
                .fetch_one(&mut replica)
                .await
                .unwrap();
        if replayed == Some(true) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the standby never replayed the migrations"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (primary, standby, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reader_waits_for_late_commits_passes_holes_and_never_skips() {
    late_commits_and_holes(pg_store().await, &database_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_replica_the_reader_waits_for_late_commits_passes_holes_and_never_skips() {
    let (primary, _standby, store) = replicated().await;
    late_commits_and_holes(store, &primary.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_replica_a_live_reader_sees_every_event_of_eight_concurrent_writers_once_in_order() {
    let (_primary, _standby, store) = replicated().await;
    eight_writers(store).await;
}

/// A replica whose replay is paused holds the feed back; resumed, the feed goes on with nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_replica_only_delays_the_feed() {
    let (_primary, standby, store) = replicated().await;
    let mut reader = Reader::start(&store);
    let first = store
        .append(&stream("a-1"), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(reader.next().await.position, first.last_position);
    let mut replica = connection(&standby.url()).await;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut replica)
        .await
        .unwrap();
    let mut written = Vec::new();
    for n in 2..12 {
        let done = store
            .append(
                &stream(&format!("b-{}", n % 3)),
                ExpectedVersion::Any,
                vec![event(n)],
            )
            .await
            .unwrap();
        written.push(done.last_position);
    }
    reader.nothing_for(Duration::from_secs(1)).await;
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut replica)
        .await
        .unwrap();
    for position in written {
        assert_eq!(reader.next().await.position, position);
    }
}

async fn late_commits_and_holes(store: PgEventStore, primary: &str) {
    let mut reader = Reader::start(&store);

    let first = store
        .append(&stream("a-1"), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(reader.next().await.position, first.last_position);

    // 1. Out-of-order commit: T1 takes its position first, a later append commits before it.
    let mut t1 = connection(primary).await;
    sqlx::query("BEGIN").execute(&mut t1).await.unwrap();
    let held = append_in_open_transaction(&mut t1, &store, "b-1", 2).await;
    let later = store
        .append(&stream("c-1"), ExpectedVersion::Any, vec![event(3)])
        .await
        .unwrap();
    reader.nothing_for(Duration::from_millis(600)).await;

    // 2. A writer that takes positions and rolls back: a permanent hole.
    let mut t2 = connection(primary).await;
    sqlx::query("BEGIN").execute(&mut t2).await.unwrap();
    append_in_open_transaction(&mut t2, &store, "d-1", 4).await;
    sqlx::query("ROLLBACK").execute(&mut t2).await.unwrap();

    sqlx::query("COMMIT").execute(&mut t1).await.unwrap();
    assert_eq!(
        reader.next().await.event_id,
        held,
        "the late commit comes first: it holds the older transaction"
    );
    assert_eq!(reader.next().await.position, later.last_position);

    // The hole does not stall the reader.
    let after_hole = store
        .append(&stream("e-1"), ExpectedVersion::Any, vec![event(5)])
        .await
        .unwrap();
    assert_eq!(reader.next().await.position, after_hole.last_position);

    // 3. A transaction held open for 2 s: the reader waits for it, then delivers both in order.
    let mut t3 = connection(primary).await;
    sqlx::query("BEGIN").execute(&mut t3).await.unwrap();
    let slow = append_in_open_transaction(&mut t3, &store, "f-1", 6).await;
    let fast = store
        .append(&stream("g-1"), ExpectedVersion::Any, vec![event(7)])
        .await
        .unwrap();
    reader.nothing_for(Duration::from_secs(2)).await;
    sqlx::query("COMMIT").execute(&mut t3).await.unwrap();
    assert_eq!(reader.next().await.event_id, slow);
    assert_eq!(reader.next().await.position, fast.last_position);

    // What the reader saw is exactly the store's history: nothing skipped, nothing twice, the rolled-back event absent.
    let history = store.read_all(Position::START, usize::MAX).await.unwrap();
    assert_eq!(reader.seen, history);
    assert_eq!(history.len(), 6);
    assert!(history.windows(2).all(|w| w[0].position < w[1].position));
    assert!(history.iter().all(|e| e.stream_id.as_str() != "d-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_reader_sees_every_event_of_eight_concurrent_writers_once_in_order() {
    eight_writers(pg_store().await).await;
}

async fn eight_writers(store: PgEventStore) {
    const TASKS: u64 = 8;
    const EVENTS_PER_TASK: u64 = 2_000;
    let mut reader = store.subscribe_all(Position::START);

    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let own = stream(&format!("own-{task}"));
                let mut own_version = Version::INITIAL;
                let mut written = Vec::new();
                let mut n = 0;
                while n < EVENTS_PER_TASK {
                    let size = (1 + (n + task) % 5).min(EVENTS_PER_TASK - n);
                    let batch: Vec<_> = (n..n + size).map(event).collect();
                    written.extend(batch.iter().map(|e| e.event_id));
                    if (n / 5) % 2 == 0 {
                        let result = store
                            .append(&own, ExpectedVersion::Exact(own_version), batch)
                            .await
                            .unwrap();
                        own_version = result.last_version;
                    } else {
                        let shared = stream(&format!("shared-{}", n % 3));
                        store
                            .append(&shared, ExpectedVersion::Any, batch)
                            .await
                            .unwrap();
                    }
                    n += size;
                }
                written
            })
        })
        .collect();

    let total = (TASKS * EVENTS_PER_TASK) as usize;
    let mut seen = Vec::with_capacity(total);
    while seen.len() < total {
        let event: RecordedEvent = tokio::time::timeout(PATIENCE, reader.next())
            .await
            .expect("the reader waited too long")
            .expect("the subscription ended")
            .expect("the subscription failed");
        seen.push(event);
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }

    let ids: HashSet<EventId> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), total, "an event was delivered twice");
    assert_eq!(
        ids, written,
        "the reader saw other events than were written"
    );
    assert!(
        seen.windows(2).all(|w| w[0].position < w[1].position),
        "positions went backwards"
    );
    let mut versions: HashMap<StreamId, u64> = HashMap::new();
    for e in &seen {
        let last = versions
            .insert(e.stream_id.clone(), e.version.get())
            .unwrap_or(0);
        assert_eq!(
            e.version.get(),
            last + 1,
            "{} delivered out of version order",
            e.stream_id
        );
    }
    // Nothing more arrives.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), reader.next()).await {
        panic!("an extra event arrived: {extra:?}");
    }
}

/// A transactional projection on a store that reads its feed from the standby: checkpoints and read model on the
/// primary, every event applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_reads_the_feed_from_the_replica_and_writes_to_the_primary() {
    let (_primary, _standby, store) = replicated().await;
    let ledger = tests::ledger::PgLedger::create(&store).await;
    let running = es_core::ProjectionRunner::new(store.clone())
        .with(es_postgres::PgProjectionWorker::new(
            &store,
            ledger.clone(),
            es_core::projection::ProjectionOptions::default(),
        ))
        .start();
    let (expected, last) = tests::ledger::post(&store, "acct", 2_000, 9, 4).await;
    running.wait_for("ledger", last, PATIENCE).await.unwrap();
    assert_eq!(ledger.totals(&store).await, expected);
    assert_eq!(ledger.applied(&store).await, 2_000);
    running.shutdown().await;
}
