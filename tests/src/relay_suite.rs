//! The relay conformance suite: every publisher passes it against a real broker, with one
//! [`relay_conformance_tests!`](crate::relay_conformance_tests) call. The cases append the bank's events to a
//! PostgreSQL store, relay them, and consume them in another service's transaction (PostgreSQL, or SQLite), through
//! broker outages, relay crashes and failing mappings. None depends on the relay being slower or faster than the
//! consumer: a fault comes before the events it must delay, and every wait is bounded by [`WAIT`].

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use es_core::integration::{IntegrationEvent, IntegrationMapper, Relay};
use es_core::projection::{FailurePolicy, HandlerError, ProjectionOptions};
use es_core::{EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent, StreamId};
use es_postgres::PgEventStore;
use examples::bank::AccountEvent;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use crate::bank_relay::{ConsumerLog, PublicAccountEvents, SqliteConsumerLog};
use crate::brokers::{AnyPublisher, Kind, PrivateBroker, start_consumer};
use crate::child::ChildProcess;

/// The bound of every wait in the suite.
pub const WAIT: Duration = Duration::from_secs(180);

/// The relay's options in the suite: batches of 200, 8 streams in flight, a short backoff.
pub fn options() -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(200)
        .concurrency(8)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// A channel (subject prefix, topic, exchange) of the case's own.
pub fn unique_channel() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Appends `n` deposits over `streams` accounts in batches of 5 (stream `account-<prefix><k>`).
pub async fn deposits(store: &PgEventStore, prefix: &str, n: usize, streams: usize) {
    for batch in 0..n / 5 {
        let stream =
            StreamId::new(format!("account-{prefix}{}", batch % streams)).expect("stream id");
        let events = (0..5)
            .map(|k| {
                let amount = (batch * 5 + k) as u64;
                NewEvent::from_domain(&AccountEvent::Deposited { amount }, Metadata::new())
                    .expect("event")
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
}

/// Waits until `entries` yields at least `count` entries (or [`WAIT`] passed), and returns the last read.
pub async fn wait_for_entries<F, Fut>(count: usize, entries: F) -> Vec<(String, i64, uuid::Uuid)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<(String, i64, uuid::Uuid)>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let read = entries().await;
        if read.len() >= count || tokio::time::Instant::now() > deadline {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every event of `stored` arrived once, none else, and each stream's in version order.
pub fn assert_once_in_order(stored: &[RecordedEvent], entries: &[(String, i64, uuid::Uuid)]) {
    assert_same_events(stored, entries);
    // Each stream's sequences in the order of its expected versions (a skipped, unpublished event included).
    let mut expected: HashMap<&str, Vec<i64>> = HashMap::new();
    for event in stored {
        expected
            .entry(event.stream_id.as_str())
            .or_default()
            .push(event.version.get() as i64);
    }
    let mut arrived: HashMap<&str, Vec<i64>> = HashMap::new();
    for (stream, sequence, _) in entries {
        arrived.entry(stream.as_str()).or_default().push(*sequence);
    }
    for (stream, mut versions) in expected {
        versions.sort_unstable();
        assert_eq!(
            arrived.remove(stream).unwrap_or_default(),
            versions,
            "{stream} arrived out of order"
        );
    }
}

/// Each of `expected` was applied once, and nothing else: else says how many were lost, applied twice or invented,
/// with the first lost ones' streams and versions.
fn assert_same_events(expected: &[RecordedEvent], entries: &[(String, i64, uuid::Uuid)]) {
    let ids: HashSet<uuid::Uuid> = entries.iter().map(|(_, _, id)| *id).collect();
    let wanted: HashSet<uuid::Uuid> = expected.iter().map(|e| e.event_id.as_uuid()).collect();
    let lost: Vec<String> = expected
        .iter()
        .filter(|e| !ids.contains(&e.event_id.as_uuid()))
        .map(|e| format!("{}@{}", e.stream_id, e.version))
        .collect();
    let twice = entries.len() - ids.len();
    let invented = ids.difference(&wanted).count();
    assert!(
        lost.is_empty() && twice == 0 && invented == 0,
        "{} of {} events lost (first: {:?}), {twice} applied twice, {invented} invented",
        lost.len(),
        expected.len(),
        &lost[..lost.len().min(10)],
    );
}

/// The relay's broker errors so far, from the process's metrics recorder (installed by the first call).
fn broker_errors(relay: &str) -> u64 {
    static RECORDER: OnceLock<(Snapshotter, std::sync::Mutex<HashMap<String, u64>>)> =
        OnceLock::new();
    let (snapshotter, totals) = RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the suite's metrics recorder");
        (snapshotter, std::sync::Mutex::default())
    });
    let mut totals = totals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A snapshot takes the counters' values and sets them to 0: keep the running totals.
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value
            && key.key().name() == es_core::telemetry::RELAY_BROKER_ERRORS
            && let Some(label) = key.key().labels().find(|l| l.key() == "relay")
        {
            *totals.entry(label.value().to_owned()).or_default() += n;
        }
    }
    totals.get(relay).copied().unwrap_or(0)
}

/// 5,000 events over 50 streams reach another service once each, every stream in order; the relay's checkpoint
/// reaches the head with nothing dead-lettered.
pub async fn every_event_arrives_once_in_stream_order(kind: Kind) {
    let store = crate::pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let channel = unique_channel();
    deposits(&store, "", 5_000, 50).await;
    let url = kind.url();
    let relay = Relay::new(
        &channel,
        PublicAccountEvents,
        AnyPublisher::connect(kind, &url, &channel).await,
    );
    let name = relay.name();
    let running = relay.start(store.clone(), store.clone(), options());
    let consumer = start_consumer(kind, &url, &channel, "ledger", store.clone(), log.clone());
    let entries = wait_for_entries(5_000, || log.entries(&store)).await;
    let stored = store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    assert_once_in_order(&stored, &entries);
    let head = store.head().await.expect("head").expect("events");
    running
        .wait_for(&name, head, WAIT)
        .await
        .expect("the relay reaches the head");
    let status = running.status(&name).await.expect("status");
    assert_eq!((status.lag_events, status.dead_letters), (0, 0));
    consumer.stop.send(true).expect("stop");
    assert_eq!(consumer.task.await.expect("consumer"), 5_000);
    running.shutdown().await;
}

/// A consumer on SQLite applies each event once: a second relay (another source, so another checkpoint) publishes
/// every event again, and the consumer drops each as a duplicate.
pub async fn a_consumer_on_sqlite_drops_every_republished_event(kind: Kind) {
    let store = crate::pg_store().await;
    let inbox = crate::sqlite_store().await;
    let log = SqliteConsumerLog::create(&inbox).await;
    let channel = unique_channel();
    deposits(&store, "", 500, 10).await;
    let head = store.head().await.expect("head").expect("events");
    let url = kind.url();
    let consumer = start_consumer(kind, &url, &channel, "ledger", inbox.clone(), log.clone());
    for source in [channel.clone(), format!("{channel}again")] {
        // The same channel, published by a relay of another name the second time round.
        let publisher = AnyPublisher::connect(kind, &url, &channel).await;
        let relay = Relay::new(&source, PublicAccountEvents, publisher);
        let name = relay.name();
        let running = relay.start(store.clone(), store.clone(), options());
        running
            .wait_for(&name, head, WAIT)
            .await
            .expect("the relay reaches the head");
        running.shutdown().await;
    }
    let mut progress = consumer.progress.clone();
    let entries = wait_for_entries(500, || log.entries(&inbox)).await;
    // Every message published is acknowledged (duplicates too, unless the broker dropped them first).
    tokio::time::timeout(
        WAIT,
        progress.wait_for(|p| p.caught_up() && p.acknowledged >= 500),
    )
    .await
    .expect("the consumer catches up")
    .expect("progress");
    let stored = store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    assert_once_in_order(&stored, &log.entries(&inbox).await);
    assert_eq!(entries.len(), 500);
    consumer.stop.send(true).expect("stop");
    assert_eq!(consumer.task.await.expect("consumer"), 500);
}

/// The broker stops answering mid-run: events appended meanwhile wait, the relay's status shows them as lag and its
/// metrics show broker errors; once the broker is back, everything arrives once, in order.
pub async fn a_broker_outage_delays_but_loses_nothing(kind: Kind) {
    let broker = PrivateBroker::start(kind);
    let store = crate::pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let channel = unique_channel();
    deposits(&store, "", 2_000, 20).await;
    let url = broker.url();
    let relay = Relay::new(
        &channel,
        PublicAccountEvents,
        AnyPublisher::connect(kind, &url, &channel).await,
    );
    let name = relay.name();
    let running = relay.start(store.clone(), store.clone(), options());
    let consumer = start_consumer(kind, &url, &channel, "ledger", store.clone(), log.clone());
    wait_for_entries(300, || log.entries(&store)).await;

    broker.pause();
    deposits(&store, "late", 100, 10).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker_errors(&name) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage never showed as a broker error"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = running.status(&name).await.expect("status");
    assert!(
        during.lag_events >= 100,
        "the lag must show the events appended during the outage: {during:?}"
    );
    broker.resume();

    let entries = wait_for_entries(2_100, || log.entries(&store)).await;
    let stored = store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    assert_once_in_order(&stored, &entries);
    let head = store.head().await.expect("head").expect("events");
    running
        .wait_for(&name, head, WAIT)
        .await
        .expect("the relay reaches the head");
    assert_eq!(running.status(&name).await.expect("status").lag_events, 0);
    consumer.stop.send(true).expect("stop");
    consumer.task.await.expect("consumer");
    running.shutdown().await;
}

/// The relay process is SIGKILLed ten times while it publishes; a last one finishes. Nothing is lost, and every
/// event published twice (after each kill, from the checkpoint) is dropped by the broker or by the consumer.
pub async fn a_relay_killed_ten_times_loses_nothing(kind: Kind, relay_worker: &str) {
    const EVENTS: usize = 5_000;
    let store = crate::pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let channel = unique_channel();
    deposits(&store, "", EVENTS, 50).await;
    let url = kind.url();
    let spawn = || {
        ChildProcess::spawn(
            relay_worker,
            &[kind.name(), &url, store.schema().as_str(), &channel],
        )
    };
    // The first relay sets the channel up; the consumer attaches once it runs.
    let first = spawn();
    first.expect("running", WAIT);
    let consumer = start_consumer(kind, &url, &channel, "ledger", store.clone(), log.clone());
    let mut relay = Some(first);
    for round in 1..=10usize {
        // Killed once the consumer has seen more than before: each kill lands while the relay publishes (or after
        // it finished, which loses nothing either).
        let seen = wait_for_entries(round * EVENTS / 12, || log.entries(&store))
            .await
            .len();
        assert!(
            seen >= round * EVENTS / 12,
            "no progress before kill {round}"
        );
        if let Some(process) = relay.take() {
            process.kill();
        }
        let next = spawn();
        next.expect("running", WAIT);
        relay = Some(next);
    }
    if let Some(last) = relay {
        last.finish(WAIT);
    }
    let entries = wait_for_entries(EVENTS, || log.entries(&store)).await;
    let stored = store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    assert_once_in_order(&stored, &entries);
    if kind == Kind::Nats {
        // JetStream dropped the re-publications by their message id: one stored message per event.
        let client = async_nats::connect(&url).await.expect("NATS");
        let mut stream = async_nats::jetstream::new(client)
            .get_stream(es_nats::RelayConfig::new(&channel).stream)
            .await
            .expect("the relay's stream");
        assert_eq!(
            stream.info().await.expect("stream info").state.messages,
            EVENTS as u64
        );
    }
    consumer.stop.send(true).expect("stop");
    consumer.task.await.expect("consumer");
}

/// Publishes deposits, and fails to map one amount.
struct FailsOn(u64);

impl IntegrationMapper for FailsOn {
    type Event = AccountEvent;

    fn map(
        &self,
        event: &AccountEvent,
        record: &RecordedEvent,
    ) -> Result<Option<IntegrationEvent>, HandlerError> {
        match event {
            AccountEvent::Deposited { amount } if *amount == self.0 => {
                Err("this amount cannot be published".into())
            }
            _ => PublicAccountEvents.map(event, record),
        }
    }
}

/// A mapping that fails is dead-lettered under that policy, and the relay goes on with the next event.
pub async fn a_mapping_failure_is_dead_lettered(kind: Kind) {
    let store = crate::pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let channel = unique_channel();
    deposits(&store, "", 100, 5).await;
    let url = kind.url();
    let publisher = AnyPublisher::connect(kind, &url, &channel).await;
    let relay = Relay::new(&channel, FailsOn(13), publisher);
    let name = relay.name();
    let policy = options()
        .max_attempts(2)
        .on_failure(FailurePolicy::DeadLetter);
    let running = relay.start(store.clone(), store.clone(), policy);
    let consumer = start_consumer(kind, &url, &channel, "ledger", store.clone(), log.clone());
    let head = store.head().await.expect("head").expect("events");
    running
        .wait_for(&name, head, WAIT)
        .await
        .expect("the relay reaches the head");
    let letters = running.dead_letters(&name).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("cannot be published"),
        "{}",
        letters[0].error
    );
    let entries = wait_for_entries(99, || log.entries(&store)).await;
    let stored = store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read");
    let published: Vec<RecordedEvent> = stored
        .into_iter()
        .filter(|e| e.event_id != letters[0].event_id)
        .collect();
    assert_once_in_order(&published, &entries);
    consumer.stop.send(true).expect("stop");
    consumer.task.await.expect("consumer");
    running.shutdown().await;
}

/// The relay conformance suite for one broker: `relay_conformance_tests!(tests::brokers::Kind::Kafka);` in a test
/// file of its own.
#[macro_export]
macro_rules! relay_conformance_tests {
    ($kind:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn every_event_arrives_once_in_stream_order() {
            $crate::relay_suite::every_event_arrives_once_in_stream_order($kind).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_consumer_on_sqlite_drops_every_republished_event() {
            $crate::relay_suite::a_consumer_on_sqlite_drops_every_republished_event($kind).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_broker_outage_delays_but_loses_nothing() {
            $crate::relay_suite::a_broker_outage_delays_but_loses_nothing($kind).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_relay_killed_ten_times_loses_nothing() {
            $crate::relay_suite::a_relay_killed_ten_times_loses_nothing(
                $kind,
                env!("CARGO_BIN_EXE_relay_worker"),
            )
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_mapping_failure_is_dead_lettered() {
            $crate::relay_suite::a_mapping_failure_is_dead_lettered($kind).await;
        }
    };
}
