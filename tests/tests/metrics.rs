//! The metrics the framework records, read back through the `metrics` facade with a debugging recorder: appends,
//! `execute` outcomes and cache lookups, loads, projection batches, retries and the sampled gauges.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use es_core::process::{
    CommandContext, CommandRouter, Input, Outcome, ProcessManager, ProcessRunner, Reaction,
    RouteError,
};
use es_core::projection::{HandlerError, ProjectionOptions, TransientError};
use es_core::telemetry;
use es_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Projection, ProjectionRunner, RecordedEvent,
    Repository, StreamId,
};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand, AccountEvent};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Counts deposits; fails its first event once, transiently.
#[derive(Clone, Default)]
struct Deposits {
    failed_once: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Projection for Deposits {
    type Event = AccountEvent;
    fn name(&self) -> &str {
        "deposits"
    }
    async fn handle(&self, _: AccountEvent, _: &RecordedEvent) -> Result<(), HandlerError> {
        if !self.failed_once.swap(true, Ordering::SeqCst) {
            return Err(Box::new(TransientError::new("the read model is busy")));
        }
        Ok(())
    }
}

/// Everything recorded so far in this process. The debugging recorder hands out counters and histograms since its
/// last snapshot, so each snapshot is merged in: counters add up, histograms gather, gauges keep their last value.
struct Recorder {
    snapshotter: Snapshotter,
    seen: HashMap<CompositeKey, DebugValue>,
}

/// A copy of what was recorded, to assert on.
struct Recorded {
    seen: HashMap<CompositeKey, DebugValue>,
}

/// What was recorded until now. The first call installs the process's recorder; tests share it (each reads its
/// own labels).
fn recorded() -> Recorded {
    static RECORDER: OnceLock<Mutex<Recorder>> = OnceLock::new();
    let recorder = RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        telemetry::describe_metrics();
        Mutex::new(Recorder {
            snapshotter,
            seen: HashMap::new(),
        })
    });
    let mut recorder = recorder.lock().unwrap_or_else(|e| e.into_inner());
    recorder.refresh();
    let seen = recorder
        .seen
        .iter()
        .map(|(key, value)| {
            let copy = match value {
                DebugValue::Counter(n) => DebugValue::Counter(*n),
                DebugValue::Gauge(v) => DebugValue::Gauge(*v),
                DebugValue::Histogram(samples) => DebugValue::Histogram(samples.clone()),
            };
            (key.clone(), copy)
        })
        .collect();
    Recorded { seen }
}

impl Recorder {
    /// Merges in what was recorded since the last call.
    fn refresh(&mut self) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let merged = match (self.seen.remove(&key), value) {
                (Some(DebugValue::Counter(a)), DebugValue::Counter(b)) => {
                    DebugValue::Counter(a + b)
                }
                (Some(DebugValue::Histogram(mut a)), DebugValue::Histogram(b)) => {
                    a.extend(b);
                    DebugValue::Histogram(a)
                }
                (_, value) => value,
            };
            self.seen.insert(key, merged);
        }
    }
}

impl Recorded {
    /// The values recorded under `name` whose labels include every pair of `labels`.
    fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&DebugValue> {
        self.seen
            .iter()
            .filter(|(key, _)| {
                let key = key.key();
                key.name() == name
                    && labels.iter().all(|(k, v)| {
                        key.labels()
                            .any(|label| label.key() == *k && label.value() == *v)
                    })
            })
            .map(|(_, value)| value)
            .collect()
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.values(name, labels)
            .into_iter()
            .map(|value| match value {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.values(name, labels)
            .into_iter()
            .find_map(|value| match value {
                DebugValue::Gauge(v) => Some(v.into_inner()),
                _ => None,
            })
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.values(name, labels)
            .into_iter()
            .map(|value| match value {
                DebugValue::Histogram(samples) => samples.len(),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_commands_loads_and_projections_are_measured_with_bounded_labels() {
    recorded();
    let store = InMemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let other_process = Repository::<Account, _>::new(store.clone());
    let open = AccountCommand::Open {
        owner: "ann".into(),
    };
    accounts.execute("1", &open, Metadata::new()).await.unwrap();
    accounts
        .execute("1", &open, Metadata::new())
        .await
        .unwrap_err();
    // The other repository appends behind this one's cache: its next command loses the race and decides again.
    let deposit = AccountCommand::Deposit { amount: 5 };
    other_process
        .execute("1", &deposit, Metadata::new())
        .await
        .unwrap();
    let executed = accounts
        .execute("1", &deposit, Metadata::new())
        .await
        .unwrap();
    assert_eq!(executed.attempts, 2);
    accounts.load("1").await.unwrap();

    let m = recorded();
    let account = [("category", "account")];
    let outcome = |o: &'static str| [("category", "account"), ("outcome", o)];
    assert_eq!(m.counter(telemetry::EXECUTES, &outcome("ok")), 2);
    assert_eq!(m.counter(telemetry::EXECUTES, &outcome("rejected")), 1);
    assert_eq!(m.counter(telemetry::EXECUTES, &outcome("redecided")), 1);
    assert_eq!(m.samples(telemetry::EXECUTE_SECONDS, &account), 4);
    // The first command of each repository missed; the rejected and the racing one found the cached state.
    let lookups = |r: &'static str| [("category", "account"), ("result", r)];
    assert_eq!(m.counter(telemetry::CACHE_LOOKUPS, &lookups("miss")), 2);
    assert_eq!(m.counter(telemetry::CACHE_LOOKUPS, &lookups("hit")), 2);
    assert_eq!(m.counter(telemetry::APPENDS, &outcome("ok")), 3);
    assert_eq!(m.counter(telemetry::APPENDS, &outcome("conflict")), 1);
    assert_eq!(m.counter(telemetry::APPENDED_EVENTS, &account), 3);
    assert!(m.samples(telemetry::APPEND_SECONDS, &account) >= 4);
    assert!(m.samples(telemetry::LOAD_SECONDS, &account) >= 3);
    assert!(m.counter(telemetry::LOADED_EVENTS, &account) >= 3);

    let running = ProjectionRunner::new(store.clone())
        .metrics_every(Some(Duration::from_millis(50)))
        .with_projection(
            Deposits::default(),
            store.clone(),
            ProjectionOptions::default()
                .backoff(Duration::from_millis(1), Duration::from_millis(1)),
        )
        .start();
    let head = executed.append.unwrap().last_position;
    running
        .wait_for("deposits", head, Duration::from_secs(10))
        .await
        .unwrap();
    let projection = [("projection", "deposits")];
    let m = recorded();
    assert_eq!(m.counter(telemetry::PROJECTION_EVENTS, &projection), 3);
    assert_eq!(m.counter(telemetry::PROJECTION_RETRIES, &projection), 1);
    assert!(m.samples(telemetry::PROJECTION_BATCH_SECONDS, &projection) >= 1);

    // The gauges come from the sampler: caught up, running, at the head.
    let started = Instant::now();
    let caught_up = loop {
        let m = recorded();
        let running_state = m.gauge(
            telemetry::PROJECTION_STATE,
            &[("projection", "deposits"), ("state", "running")],
        );
        let checkpoint = m.gauge(telemetry::PROJECTION_CHECKPOINT, &projection);
        if running_state == Some(1.0) && checkpoint == Some(head.prepare as f64) {
            break true;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(caught_up, "the sampler never published the caught-up state");
    let m = recorded();
    assert_eq!(
        m.gauge(telemetry::PROJECTION_LAG_EVENTS, &projection),
        Some(0.0)
    );
    assert_eq!(
        m.gauge(telemetry::PROJECTION_LAG_SECONDS, &projection),
        Some(0.0)
    );
    assert_eq!(
        m.gauge(telemetry::PROJECTION_DEAD_LETTERS, &projection),
        Some(0.0)
    );
    assert_eq!(
        m.gauge(
            telemetry::PROJECTION_STATE,
            &[("projection", "deposits"), ("state", "failed")]
        ),
        Some(0.0)
    );
    running.shutdown().await;

    // No label carries a stream id or an event id: every label is one of the bounded kinds.
    for key in recorded().seen.keys() {
        for label in key.key().labels() {
            assert!(
                [
                    "category",
                    "outcome",
                    "result",
                    "projection",
                    "state",
                    "process",
                    "relay"
                ]
                .contains(&label.key()),
                "unbounded label {} on {}",
                label.key(),
                key.key().name()
            );
            assert!(
                !label.value().contains("account-1"),
                "a stream id in {key:?}"
            );
        }
    }
}

/// On a sign-up, credits the user's wallet and sets a reminder timer due at once.
struct Welcome;

#[derive(es_core::DomainEvent)]
enum Signup {
    SignedUp { user: String },
}

#[derive(Default, Clone)]
struct Wallet(u64);

#[derive(es_core::DomainEvent)]
#[event(aggregate = Wallet)]
enum WalletEvent {
    Credited { amount: u64 },
}

impl es_core::Aggregate for Wallet {
    const CATEGORY: &'static str = "wallet";
    type Event = WalletEvent;
    type Command = u64;
    type Error = std::convert::Infallible;
    fn handle(&self, amount: &u64) -> Result<Vec<WalletEvent>, Self::Error> {
        Ok(vec![WalletEvent::Credited { amount: *amount }])
    }
    fn apply(self, WalletEvent::Credited { amount }: &WalletEvent) -> Self {
        Wallet(self.0 + amount)
    }
}

impl ProcessManager for Welcome {
    type Event = Signup;
    type State = bool;
    type Command = String;
    fn name(&self) -> &str {
        "welcome"
    }
    fn correlate(&self, Signup::SignedUp { user }: &Signup, _: &RecordedEvent) -> Option<String> {
        Some(user.clone())
    }
    fn apply(&self, _: bool, _: &Input<Signup>) -> bool {
        true
    }
    fn react(&self, _: &bool, input: &Input<Signup>) -> Reaction<String> {
        match input {
            Input::Event {
                event: Signup::SignedUp { user },
                ..
            } => Reaction::none()
                .send(user.clone())
                .set_timer("reminder", Utc::now()),
            _ => Reaction::none(),
        }
    }
}

struct Wallets(Repository<Wallet, InMemoryEventStore>);

#[async_trait::async_trait]
impl CommandRouter for Wallets {
    type Command = String;
    async fn route(&self, user: &String, context: &CommandContext) -> Result<Outcome, RouteError> {
        context.execute(&self.0, user, &5).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_manager_commands_and_timers_are_measured() {
    recorded();
    let store = InMemoryEventStore::new();
    let wallets = Repository::<Wallet, _>::new(store.clone());
    let running = ProcessRunner::new(Welcome, Wallets(wallets.clone()), store.clone())
        .timer_poll(Duration::from_secs(3600))
        .start(store.clone(), store.clone());
    let signup = NewEvent::new("SignedUp", 1, serde_json::json!({ "user": "ada" }));
    let at = store
        .append(
            &StreamId::new("signup-ada").unwrap(),
            ExpectedVersion::Any,
            vec![signup],
        )
        .await
        .unwrap()
        .last_position;
    running.wait_for(at, Duration::from_secs(10)).await.unwrap();
    let fired = running
        .fire_due_timers(Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(fired, 1);
    running.shutdown().await;

    let m = recorded();
    let welcome = [("process", "welcome")];
    assert_eq!(
        m.counter(
            telemetry::PROCESS_COMMANDS,
            &[("process", "welcome"), ("outcome", "ok")]
        ),
        1
    );
    assert_eq!(m.counter(telemetry::PROCESS_TIMERS_FIRED, &welcome), 1);
    assert!(m.gauge(telemetry::PROCESS_TIMERS_DUE, &welcome).is_some());
    assert_eq!(
        m.counter(
            telemetry::EXECUTES,
            &[("category", "wallet"), ("outcome", "ok")]
        ),
        1
    );
}

/// Each stream a multi-stream append writes counts as an append of its category, with the whole call's outcome;
/// a stream it only checks does not count.
#[tokio::test]
async fn multi_stream_appends_are_measured_per_stream_written() {
    use es_core::StoreError;
    use es_core::store::{AppendCondition, MultiAppend, Query, QueryItem};

    recorded();
    let store = InMemoryEventStore::new();
    let (a, b) = (
        StreamId::new("ledger-1").unwrap(),
        StreamId::new("ledger-2").unwrap(),
    );
    let vault = StreamId::new("vault-1").unwrap();
    let event = || NewEvent::new("Moved", 1, serde_json::json!({}));
    let transfer = MultiAppend::new()
        .append(a.clone(), ExpectedVersion::NoStream, vec![event(), event()])
        .append(b.clone(), ExpectedVersion::NoStream, vec![event()])
        .check(vault.clone(), ExpectedVersion::NoStream);
    store.append_multi(transfer).await.unwrap();
    // The ledger moved on: nothing written, a conflict for each stream the call would have written.
    let stale = MultiAppend::new()
        .append(a.clone(), ExpectedVersion::NoStream, vec![event()])
        .append(vault.clone(), ExpectedVersion::NoStream, vec![event()]);
    assert!(matches!(
        store.append_multi(stale).await,
        Err(StoreError::Conflicts { .. })
    ));
    let moved = Query::new().item(QueryItem::types(["Moved"]));
    let conditioned = MultiAppend::new()
        .append(b, ExpectedVersion::Any, vec![event()])
        .condition(AppendCondition::new(moved, None));
    assert!(matches!(
        store.append_multi(conditioned).await,
        Err(StoreError::ConditionFailed { .. })
    ));

    let m = recorded();
    let ledger = |o: &'static str| [("category", "ledger"), ("outcome", o)];
    assert_eq!(m.counter(telemetry::APPENDS, &ledger("ok")), 2);
    assert_eq!(m.counter(telemetry::APPENDS, &ledger("conflict")), 1);
    assert_eq!(m.counter(telemetry::APPENDS, &ledger("condition")), 1);
    assert_eq!(
        m.counter(
            telemetry::APPENDS,
            &[("category", "vault"), ("outcome", "conflict")]
        ),
        1
    );
    assert_eq!(
        m.counter(
            telemetry::APPENDS,
            &[("category", "vault"), ("outcome", "ok")]
        ),
        0
    );
    let ledger = [("category", "ledger")];
    assert_eq!(m.counter(telemetry::APPENDED_EVENTS, &ledger), 3);
    assert_eq!(m.samples(telemetry::APPEND_SECONDS, &ledger), 4);
}
