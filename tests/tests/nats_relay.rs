//! The event store as an outbox: bank events relayed to NATS JetStream, consumed exactly once by another service,
//! through broker outages and relay crashes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use es_core::projection::ProjectionOptions;
use es_core::{EventStore, ExpectedVersion, Metadata, NewEvent, Position, Repository, StreamId};
use es_nats::{
    ConsumeProgress, ConsumerConfig, NatsPublisher, Relay, RelayConfig, consume_reporting,
};
use es_postgres::PgEventStore;
use examples::bank::{Account, AccountCommand, AccountEvent};
use tests::bank_relay::{ConsumerLog, PublicAccountEvents};
use tests::child::ChildProcess;
use tests::{PrivateNats, nats_url, pg_store};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(120);

/// A subject prefix and stream name of the test's own.
fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn options() -> ProjectionOptions {
    ProjectionOptions::default()
        .batch_size(200)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// Runs the consumer in the background until the returned sender says stop.
async fn start_consumer(
    url: &str,
    store: &PgEventStore,
    log: &ConsumerLog,
    config: &RelayConfig,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<u64>,
    watch::Receiver<ConsumeProgress>,
) {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(url)
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let consumer = ConsumerConfig {
        stream: config.stream.clone(),
        durable: "ledger-service".into(),
        filter_subject: format!("{}.>", config.subject_prefix),
    };
    let (stop, stopped) = watch::channel(false);
    let (progress, watching) = watch::channel(ConsumeProgress::default());
    let (store, log) = (store.clone(), log.clone());
    let task = tokio::spawn(async move {
        let mut applied = 0;
        // A broker restart ends the message stream; the consumer carries on where its durable state says.
        while !*stopped.borrow() {
            match consume_reporting(
                &jetstream,
                &consumer,
                &store,
                &log,
                stopped.clone(),
                &progress,
            )
            .await
            {
                Ok(n) => applied += n,
                Err(error) => {
                    eprintln!("consumer: {error}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        applied
    });
    (stop, task, watching)
}

/// Waits until the consumer has applied `count` events.
async fn consumed(
    log: &ConsumerLog,
    store: &PgEventStore,
    count: usize,
) -> Vec<(String, i64, uuid::Uuid)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let entries = log.entries(store).await;
        if entries.len() >= count || tokio::time::Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every stored event arrived once, and each stream's in version order.
async fn assert_exactly_once_in_order(store: &PgEventStore, entries: &[(String, i64, uuid::Uuid)]) {
    let stored = store.read_all(Position::START, usize::MAX).await.unwrap();
    let ids: HashSet<uuid::Uuid> = entries.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(ids.len(), entries.len(), "an event was applied twice");
    assert_eq!(
        ids,
        stored.iter().map(|e| e.event_id.as_uuid()).collect(),
        "events were lost or invented"
    );
    let mut last: HashMap<&str, i64> = HashMap::new();
    for (stream, sequence, _) in entries {
        let previous = last.insert(stream, *sequence).unwrap_or(0);
        assert_eq!(*sequence, previous + 1, "{stream} arrived out of order");
    }
}

async fn delete_stream(url: &str, name: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_commands_reach_another_service_once_each_in_stream_order() {
    let store = pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let config = RelayConfig::new(unique_prefix());
    let accounts = Repository::<Account, _>::new(store.clone());
    for i in 0..5 {
        let id = format!("a{i}");
        accounts
            .execute(
                &id,
                &AccountCommand::Open { owner: id.clone() },
                Metadata::new(),
            )
            .await
            .unwrap();
        for amount in 1..=20 {
            accounts
                .execute(&id, &AccountCommand::Deposit { amount }, Metadata::new())
                .await
                .unwrap();
        }
    }
    let publisher = NatsPublisher::connect(&nats_url(), config.clone())
        .await
        .unwrap();
    let relay = Relay::new(&config.subject_prefix, PublicAccountEvents, publisher);
    let running = relay.start(store.clone(), store.clone(), options());
    let (stop, consumer, mut progress) = start_consumer(&nats_url(), &store, &log, &config).await;
    // More commands while everything runs live.
    accounts
        .execute(
            "a0",
            &AccountCommand::Withdraw { amount: 5 },
            Metadata::new(),
        )
        .await
        .unwrap();
    let entries = consumed(&log, &store, 106).await;
    assert_exactly_once_in_order(&store, &entries).await;
    // The consumer says when it has caught up, so callers need not poll or sleep.
    let caught_up = tokio::time::timeout(WAIT, progress.wait_for(ConsumeProgress::caught_up))
        .await
        .expect("the consumer reports catching up")
        .map(|p| *p)
        .unwrap();
    assert_eq!((caught_up.applied, caught_up.pending), (106, 0));
    stop.send(true).unwrap();
    assert_eq!(consumer.await.unwrap(), 106);
    running.shutdown().await;
    delete_stream(&nats_url(), &config.stream).await;
}

/// Appends `n` deposits over 10 accounts in batches of 5.
async fn deposits(store: &PgEventStore, n: usize) {
    for batch in 0..n / 5 {
        let stream = StreamId::new(format!("account-b{}", batch % 10)).unwrap();
        let events = (0..5)
            .map(|k| {
                NewEvent::from_domain(
                    &AccountEvent::Deposited {
                        amount: (batch * 5 + k) as u64,
                    },
                    Metadata::new(),
                )
                .unwrap()
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_delays_but_loses_nothing_and_the_checkpoint_reaches_the_head() {
    // The only test here that reads metrics; the relays of the others have names of their own.
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let mut nats = PrivateNats::start();
    let store = pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let config = RelayConfig::new(unique_prefix()).ack_timeout(Duration::from_secs(1));
    deposits(&store, 5_000).await;
    let publisher = NatsPublisher::connect(&nats.url(), config.clone())
        .await
        .unwrap();
    let relay = Relay::new(&config.subject_prefix, PublicAccountEvents, publisher);
    let running = relay.start(store.clone(), store.clone(), options());
    let (stop, consumer, _) = start_consumer(&nats.url(), &store, &log, &config).await;

    // Take the broker away mid-run, for a while; events appended meanwhile cannot be published, whatever the relay's
    // speed: the lag shows them, and the relay's attempts show as broker errors before the broker comes back.
    consumed(&log, &store, 300).await;
    nats.stop();
    deposits(&store, 100).await;
    let relay_name = format!("relay-{}", config.subject_prefix);
    // A snapshot takes the counters' values and sets them to 0: keep the running totals.
    let mut totals: HashMap<String, u64> = HashMap::new();
    let mut counted = |name: &str| -> u64 {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let ours = key
                .key()
                .labels()
                .any(|l| l.key() == "relay" && l.value() == relay_name);
            if let (true, metrics_util::debugging::DebugValue::Counter(n)) = (ours, value) {
                *totals.entry(key.key().name().to_owned()).or_default() += n;
            }
        }
        totals.get(name).copied().unwrap_or(0)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while counted(es_core::telemetry::RELAY_BROKER_ERRORS) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage never showed as a broker error"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = running.status(&relay_name).await.unwrap();
    assert!(
        during.lag_events >= 100,
        "the relay's lag must show the events appended during the outage: {during:?}"
    );
    nats.restart();

    let entries = consumed(&log, &store, 5_100).await;
    assert_eq!(entries.len(), 5_100);
    assert_exactly_once_in_order(&store, &entries).await;
    let head = store.head().await.unwrap();
    running
        .wait_for(
            &format!("relay-{}", config.subject_prefix),
            head.unwrap(),
            WAIT,
        )
        .await
        .unwrap();
    let status = running
        .status(&format!("relay-{}", config.subject_prefix))
        .await
        .unwrap();
    assert_eq!(
        (status.checkpoint, status.lag_events, status.dead_letters),
        (head, 0, 0)
    );
    assert!(counted(es_core::telemetry::RELAY_PUBLISHED) >= 5_100);
    stop.send(true).unwrap();
    consumer.await.unwrap();
    running.shutdown().await;
}

/// A `relay_worker` process.
fn spawn_relay(schema: &str, prefix: &str, events: usize) -> ChildProcess {
    ChildProcess::spawn(
        env!("CARGO_BIN_EXE_relay_worker"),
        &[schema, prefix, &events.to_string()],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_again_and_again_loses_nothing_and_the_broker_drops_its_duplicates() {
    const EVENTS: usize = 5_000;
    let store = pg_store().await;
    let log = ConsumerLog::create(&store).await;
    let prefix = unique_prefix();
    let config = RelayConfig::new(&prefix);
    deposits(&store, EVENTS).await;
    let (stop, consumer, _) = {
        // The relay process creates the stream; wait for it before the consumer attaches.
        let first = spawn_relay(store.schema().as_str(), &prefix, EVENTS);
        first.expect("running", WAIT);
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.kill();
        start_consumer(&nats_url(), &store, &log, &config).await
    };
    for round in 0..4u64 {
        let relay = spawn_relay(store.schema().as_str(), &prefix, EVENTS);
        relay.expect("running", WAIT);
        tokio::time::sleep(Duration::from_millis(
            150 + fastrand::u64(0..150) + round * 20,
        ))
        .await;
        relay.kill();
    }
    let client = async_nats::connect(nats_url()).await.unwrap();
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(&config.stream)
        .await
        .unwrap();
    let before = stream.info().await.unwrap().state.messages;
    assert!(
        before < EVENTS as u64,
        "the relay had finished before the last kill ({before} stored)"
    );
    spawn_relay(store.schema().as_str(), &prefix, EVENTS).finish(WAIT);
    let entries = consumed(&log, &store, EVENTS).await;
    assert_eq!(entries.len(), EVENTS);
    assert_exactly_once_in_order(&store, &entries).await;
    // Re-publications after each kill were dropped by the server: one stored message per event.
    assert_eq!(stream.info().await.unwrap().state.messages, EVENTS as u64);
    stop.send(true).unwrap();
    consumer.await.unwrap();
    delete_stream(&nats_url(), &config.stream).await;
}
