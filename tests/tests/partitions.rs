//! A partitioned projection leased across worker processes, on a private PostgreSQL server the test starts: three
//! workers share eight partitions under eight writers; one is SIGKILLed, one SIGSTOPped past its lease and let go
//! again, a fourth joins. The partitions must be taken over within the lease bound and rebalanced, and the read model
//! must end equal to a clean fold of the store: every event applied once, each stream in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use es_core::projection::ProjectionOptions;
use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamId};
use es_postgres::{PartitionStatus, PgEventStore, PgPartitions, partition_of};
use tests::child::ChildProcess;
use tests::ledger::{LedgerEvent, PgLedger, Totals};
use tests::private_pg::PrivatePostgres;

const PARTITIONS: u32 = 8;
const LEASE: Duration = Duration::from_secs(2);
/// Only keeps a broken takeover from hanging the suite.
const BOUND: Duration = Duration::from_secs(60);

async fn private_store(server: &PrivatePostgres) -> PgEventStore {
    let store = PgEventStore::builder()
        .schema("es")
        .max_connections(12)
        .connect(&server.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn worker(server: &PrivatePostgres, name: &str) -> ChildProcess {
    ChildProcess::spawn_on(
        env!("CARGO_BIN_EXE_partition_worker"),
        &[
            "es",
            &PARTITIONS.to_string(),
            &LEASE.as_millis().to_string(),
            name,
            "20",
        ],
        &server.url(),
    )
}

/// Appends batches of 1 to 4 postings to five streams of its own until `stop`; returns what it wrote and the last
/// position.
async fn write_until(
    store: PgEventStore,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> (Totals, Position) {
    let mut expected = Totals::default();
    let mut last = Position::START;
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let stream = format!("w{writer}-{}", round % 5);
        let amounts: Vec<i64> = (0..1 + round % 4)
            .map(|k| ((round * 7 + k) % 50) as i64 + 1)
            .collect();
        let events = amounts
            .iter()
            .map(|&amount| {
                NewEvent::from_domain(&LedgerEvent::Posted { amount }, Default::default()).unwrap()
            })
            .collect();
        let written = store
            .append(
                &StreamId::new(&stream).unwrap(),
                ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap();
        last = last.max(written.last_position);
        *expected.totals.entry(stream.clone()).or_default() += amounts.iter().sum::<i64>();
        *expected.counts.entry(stream).or_default() += amounts.len() as i64;
        round += 1;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    (expected, last)
}

/// How many partitions each worker holds now (by name); free ones under `-`.
fn holders(status: &[PartitionStatus]) -> HashMap<String, usize> {
    let mut held = HashMap::new();
    for partition in status {
        let owner = partition.owner.clone().unwrap_or_else(|| "-".to_owned());
        *held.entry(owner).or_default() += 1;
    }
    held
}

/// Waits until the partitions are held by exactly `workers`, each with its fair share (2 or 3 of 8 for three
/// workers); returns how long that took.
async fn until_balanced<P: es_postgres::PgProjection>(
    partitions: &PgPartitions<P>,
    workers: &[&str],
) -> Duration {
    let started = Instant::now();
    let fair = PARTITIONS.div_ceil(workers.len() as u32) as usize;
    let least = PARTITIONS as usize / workers.len();
    let mut seen = None;
    loop {
        let status = partitions.status().await.unwrap();
        let held = holders(&status);
        if seen.as_ref() != Some(&held) {
            let mut shown: Vec<_> = held.iter().collect();
            shown.sort();
            println!("{:>6} ms: {shown:?}", started.elapsed().as_millis());
            seen = Some(held.clone());
        }
        let balanced = held.len() == workers.len()
            && workers
                .iter()
                .all(|w| held.get(*w).is_some_and(|&n| (least..=fair).contains(&n)));
        if balanced {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < BOUND,
            "not balanced over {workers:?} within {BOUND:?}: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_share_partitions_take_over_from_killed_and_paused_ones_and_apply_every_event_once()
{
    let server = PrivatePostgres::start();
    let store = private_store(&server).await;
    let ledger = PgLedger::create(&store).await;
    let partitions = PgPartitions::new(
        &store,
        ledger.clone(),
        PARTITIONS,
        ProjectionOptions::default(),
    );
    let a = worker(&server, "a");
    let b = worker(&server, "b");
    let c = worker(&server, "c");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(write_until(store.clone(), w, Arc::clone(&stop))))
        .collect();

    let balanced = until_balanced(&partitions, &["a", "b", "c"]).await;
    a.kill();
    let after_kill = until_balanced(&partitions, &["b", "c"]).await;
    b.signal("STOP");
    let after_pause = until_balanced(&partitions, &["c"]).await;
    tokio::time::sleep(LEASE).await;
    b.signal("CONT");
    let d = worker(&server, "d");
    let after_join = until_balanced(&partitions, &["b", "c", "d"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Ordering::SeqCst);
    let mut expected = Totals::default();
    let mut last = Position::START;
    for writer in writers {
        let (totals, at) = writer.await.unwrap();
        expected.totals.extend(totals.totals);
        expected.counts.extend(totals.counts);
        last = last.max(at);
    }
    partitions.wait_for(last, BOUND).await.unwrap();

    let mut folded = Totals::default();
    for event in store.read_all(Position::START, usize::MAX).await.unwrap() {
        let LedgerEvent::Posted { amount } = event.decode::<LedgerEvent>().unwrap();
        *folded
            .totals
            .entry(event.stream_id.to_string())
            .or_default() += amount;
        *folded
            .counts
            .entry(event.stream_id.to_string())
            .or_default() += 1;
    }
    assert_eq!(folded, expected, "the store lost or doubled a write");
    assert_eq!(
        ledger.totals(&store).await,
        folded,
        "the read model differs from a clean fold"
    );
    let events: i64 = folded.counts.values().sum();
    assert_eq!(ledger.applied(&store).await, events);
    assert_eq!(ledger.out_of_order(&store).await, Vec::<String>::new());
    let mut used = std::collections::HashSet::new();
    for stream in folded.counts.keys() {
        used.insert(partition_of(stream, PARTITIONS));
    }
    assert!(
        used.len() > PARTITIONS as usize / 2,
        "the streams hit few partitions: {used:?}"
    );
    println!(
        "{events} events; balanced over 3 workers after {balanced:?}; after SIGKILL {after_kill:?}; after SIGSTOP \
         {after_pause:?}; a new worker got its share after {after_join:?} (lease {LEASE:?}, poll 100 ms)"
    );
    let bound = LEASE + LEASE / 3 + Duration::from_secs(3);
    assert!(
        after_kill < bound,
        "takeover after SIGKILL took {after_kill:?}"
    );
    assert!(
        after_pause < bound,
        "takeover after SIGSTOP took {after_pause:?}"
    );
    drop((b, c, d));
}
