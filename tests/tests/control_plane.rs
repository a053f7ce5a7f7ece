//! The control plane: an operator in another runner's place reads every projection's status from the store and
//! sends requests that the instance running the projection carries out, each with a typed answer. On PostgreSQL
//! with two runners (one active, one standby taking over), and in memory for the time-outs and refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use es_core::control::{
    ControlAnswer, ControlCommand, ControlOptions, Operator, ProjectionOverview,
};
use es_core::projection::{FailurePolicy, HandlerError, ProjectionOptions, RunningProjections};
use es_core::{
    EventStore, ExpectedVersion, NewEvent, Projection, ProjectionRunner, RecordedEvent, StreamId,
};
use es_memory::InMemoryEventStore;
use es_postgres::{PgEventStore, PgProjectionWorker};
use tests::ledger::{LedgerEvent, POISON, PgLedger, post};
use tests::pg_store;

const ANSWER: Duration = Duration::from_secs(10);

fn control(instance: &str) -> ControlOptions {
    ControlOptions::new()
        .instance(instance)
        .poll(Duration::from_millis(20))
        .report_every(Duration::from_millis(100))
}

fn parking() -> ProjectionOptions {
    ProjectionOptions::default()
        .max_attempts(1)
        .on_failure(FailurePolicy::DeadLetter)
}

/// Polls `check` on the operator's view of `name` until it holds (at most 30 s), and returns that view.
async fn until<S, F>(operator: &Operator<S>, name: &str, what: &str, check: F) -> ProjectionOverview
where
    S: EventStore
        + es_core::projection::CheckpointStore
        + es_core::projection::DeadLetterStore
        + es_core::control::ControlStore
        + es_core::process::ProcessStore,
    F: Fn(&ProjectionOverview) -> bool,
{
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(view) = operator.projection(name).await.unwrap() {
            if check(&view) {
                return view;
            }
            last = Some(view);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never got {what}; last seen {last:#?}");
}

async fn poison(store: &impl EventStore, stream: &str) -> es_core::EventId {
    let event =
        NewEvent::from_domain(&LedgerEvent::Posted { amount: POISON }, Default::default()).unwrap();
    let id = event.event_id;
    store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap();
    id
}

fn start_pg(store: &PgEventStore, ledger: &PgLedger, instance: &str) -> RunningProjections {
    ProjectionRunner::new(store.clone())
        .with(
            PgProjectionWorker::new(store, ledger.clone(), parking())
                .standby_poll(Duration::from_millis(100)),
        )
        .control_plane(store.clone(), control(instance))
        .start()
}

async fn done(answer: impl Future<Output = Result<ControlAnswer, es_core::StoreError>>) -> String {
    match answer.await.unwrap() {
        ControlAnswer::Done { detail } => detail,
        other => panic!("expected done, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_runs_a_postgres_projection_through_the_store() {
    let store = pg_store().await;
    let ledger = PgLedger::create(&store).await;
    let a = start_pg(&store, &ledger, "a");
    let operator = Operator::new(store.clone());
    until(&operator, "ledger", "active on a", |p| {
        p.active.as_deref() == Some("a")
    })
    .await;
    let b = start_pg(&store, &ledger, "b");

    post(&store, "acct", 50, 5, 10).await;
    let bad = poison(&store, "acct-9").await;
    // b reports `starting` until its first attempt to take the projection answers.
    let view = until(&operator, "ledger", "caught up with a dead letter", |p| {
        p.lag_events == 0
            && p.dead_letters == 1
            && p.instances.len() == 2
            && p.instances.iter().all(|i| i.report.state != "starting")
    })
    .await;
    assert_eq!(
        (view.state.label(), view.active.as_deref()),
        ("running", Some("a"))
    );
    let standby = view
        .instances
        .iter()
        .find(|i| i.report.instance == "b")
        .unwrap();
    assert_eq!(standby.report.state, "standby", "{view:#?}");
    let letters = operator.dead_letters("ledger").await.unwrap();
    assert_eq!((letters.len(), letters[0].event_id), (1, bad));

    // Pause: nothing more is read; the lag shows it.
    done(operator.send("ledger", ControlCommand::Pause, ANSWER)).await;
    let paused_at = until(&operator, "ledger", "paused", |p| {
        p.state.label() == "paused" && p.paused
    })
    .await
    .checkpoint;
    post(&store, "acct", 10, 5, 10).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let view = until(&operator, "ledger", "lag while paused", |p| {
        p.lag_events == 10
    })
    .await;
    assert_eq!(
        view.checkpoint, paused_at,
        "a paused projection reads nothing"
    );

    // Resume: it catches up.
    done(operator.send("ledger", ControlCommand::Resume, ANSWER)).await;
    until(&operator, "ledger", "caught up after resume", |p| {
        p.lag_events == 0 && !p.paused
    })
    .await;

    // Redrive while the handler still fails: refused, the letter stays; then fixed: handled, gone.
    let again = operator
        .send(
            "ledger",
            ControlCommand::Redrive {
                event_id: Some(bad),
            },
            ANSWER,
        )
        .await
        .unwrap();
    assert!(
        matches!(again, ControlAnswer::Rejected { ref reason } if reason.contains("failed again")),
        "{again}"
    );
    ledger.poisoned.store(false, Ordering::SeqCst);
    done(operator.send(
        "ledger",
        ControlCommand::Redrive {
            event_id: Some(bad),
        },
        ANSWER,
    ))
    .await;
    until(&operator, "ledger", "no dead letters", |p| {
        p.dead_letters == 0
    })
    .await;
    assert_eq!(ledger.totals(&store).await.counts.get("acct-9"), Some(&1));

    // Discard: the letter goes without its event being handled; a second discard names what is missing.
    ledger.poisoned.store(true, Ordering::SeqCst);
    let dropped = poison(&store, "acct-8").await;
    until(&operator, "ledger", "a new dead letter", |p| {
        p.dead_letters == 1 && p.lag_events == 0
    })
    .await;
    done(operator.send(
        "ledger",
        ControlCommand::Discard { event_id: dropped },
        ANSWER,
    ))
    .await;
    let missing = operator
        .send(
            "ledger",
            ControlCommand::Discard { event_id: dropped },
            ANSWER,
        )
        .await
        .unwrap();
    assert!(
        matches!(missing, ControlAnswer::Rejected { ref reason } if reason.contains(&dropped.to_string())),
        "{missing}"
    );
    assert_eq!(ledger.totals(&store).await.counts.get("acct-8"), None);

    // Rebuild: the read model is emptied and replayed; the discarded event now fails again and is parked again.
    ledger.poisoned.store(false, Ordering::SeqCst);
    let before = ledger.totals(&store).await;
    done(operator.send("ledger", ControlCommand::Rebuild, ANSWER)).await;
    until(&operator, "ledger", "rebuilt", |p| p.lag_events == 0).await;
    let mut expected = before.clone();
    expected.counts.insert("acct-8".into(), 1);
    expected.totals.insert("acct-8".into(), POISON);
    assert_eq!(ledger.totals(&store).await, expected);

    // Reset to a position: the checkpoint moves there.
    let head = store.head().await.unwrap().unwrap();
    let detail =
        done(operator.send("ledger", ControlCommand::ResetTo { position: head }, ANSWER)).await;
    assert!(detail.contains(&head.to_string()), "{detail}");

    // A pause survives a takeover: a paused, then gone, holder leaves the standby paused.
    done(operator.send("ledger", ControlCommand::Pause, ANSWER)).await;
    a.shutdown().await;
    let view = until(&operator, "ledger", "taken over by b", |p| {
        p.active.as_deref() == Some("b")
    })
    .await;
    assert_eq!(view.state.label(), "paused", "{view:#?}");
    let gone = view
        .instances
        .iter()
        .find(|i| i.report.instance == "a")
        .unwrap();
    assert_eq!(gone.report.state, "stopped");
    done(operator.send("ledger", ControlCommand::Resume, ANSWER)).await;
    until(&operator, "ledger", "running on b", |p| {
        p.state.label() == "running"
    })
    .await;
    b.shutdown().await;

    // Nobody runs it now: refused at once, naming why.
    let refused = operator
        .send("ledger", ControlCommand::Rebuild, ANSWER)
        .await
        .unwrap();
    assert!(
        matches!(refused, ControlAnswer::Rejected { ref reason } if reason.contains("no live instance")),
        "{refused}"
    );
    let unknown = operator
        .send("nope", ControlCommand::Rebuild, ANSWER)
        .await
        .unwrap();
    assert!(
        matches!(unknown, ControlAnswer::Rejected { ref reason } if reason.contains("nope")),
        "{unknown}"
    );
}

/// Sleeps in every event while `slow` is set, so a request waits behind the batch in flight.
#[derive(Clone, Default)]
struct Sleepy {
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Projection for Sleepy {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "sleepy"
    }
    async fn handle(&self, event: LedgerEvent, _: &RecordedEvent) -> Result<(), HandlerError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match event {
            LedgerEvent::Posted { amount: POISON } => Err("poison".into()),
            LedgerEvent::Posted { .. } => Ok(()),
        }
    }
}

fn start_memory(
    store: &InMemoryEventStore,
    projection: Sleepy,
    options: ControlOptions,
    policy: FailurePolicy,
) -> RunningProjections {
    let projection_options = ProjectionOptions::default()
        .max_attempts(1)
        .on_failure(policy);
    ProjectionRunner::new(store.clone())
        .with_projection(projection, store.clone(), projection_options)
        .control_plane(store.clone(), options)
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_that_nobody_answers_in_time_time_out_and_say_whether_they_were_taken() {
    let store = InMemoryEventStore::new();
    let operator = Operator::new(store.clone());

    // An instance that looks for requests only every 10 minutes: the request is withdrawn, never carried out.
    let deaf = start_memory(
        &store,
        Sleepy::default(),
        control("deaf").poll(Duration::from_secs(600)),
        FailurePolicy::DeadLetter,
    );
    until(&operator, "sleepy", "active", |p| p.active.is_some()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = operator
        .send("sleepy", ControlCommand::Pause, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(answer, ControlAnswer::TimedOut { claimed_by: None });
    assert!(!operator.projection("sleepy").await.unwrap().unwrap().paused);
    deaf.shutdown().await;

    // An instance busy in a long batch took the request: the answer names it.
    let sleepy = Sleepy::default();
    let busy = start_memory(
        &store,
        sleepy.clone(),
        control("busy"),
        FailurePolicy::DeadLetter,
    );
    until(&operator, "sleepy", "active on busy", |p| {
        p.active.as_deref() == Some("busy")
    })
    .await;
    sleepy.slow.store(true, Ordering::SeqCst);
    post(&store, "acct", 1, 1, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = operator
        .send("sleepy", ControlCommand::Pause, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        answer,
        ControlAnswer::TimedOut {
            claimed_by: Some("busy".into())
        }
    );
    // It still carries it out once the batch is done.
    until(&operator, "sleepy", "paused after the batch", |p| {
        p.state.label() == "paused"
    })
    .await;
    busy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_projection_refuses_requests_naming_its_error() {
    let store = InMemoryEventStore::new();
    let operator = Operator::new(store.clone());
    let running = start_memory(&store, Sleepy::default(), control("x"), FailurePolicy::Stop);
    poison(&store, "acct-1").await;
    let view = until(&operator, "sleepy", "failed", |p| {
        p.state.label() == "failed"
    })
    .await;
    assert!(
        view.detail.as_deref().is_some_and(|d| d.contains("poison")),
        "{view:#?}"
    );
    let answer = operator
        .send("sleepy", ControlCommand::Rebuild, ANSWER)
        .await
        .unwrap();
    assert!(
        matches!(answer, ControlAnswer::Rejected { ref reason } if reason.contains("failed") && reason.contains("poison")),
        "{answer}"
    );
    running.shutdown().await;
}

fn stale_report(
    instance: &str,
    state: &str,
    age: chrono::Duration,
) -> es_core::control::ProjectionReport {
    es_core::control::ProjectionReport {
        projection: "balances".into(),
        instance: instance.into(),
        state: state.into(),
        detail: None,
        checkpoint: None,
        last_event_at: None,
        reported_at: chrono::Utc::now() - age,
    }
}

#[tokio::test]
async fn an_instance_that_stopped_reporting_is_gone_and_refuses_requests() {
    use es_core::control::ControlStore;
    let store = InMemoryEventStore::new();
    store
        .report(&[stale_report("a", "running", chrono::Duration::seconds(60))])
        .await
        .unwrap();
    let operator = Operator::new(store.clone()).stale_after(Duration::from_secs(10));
    let view = operator.projection("balances").await.unwrap().unwrap();
    assert_eq!((view.state.label(), view.active.as_deref()), ("gone", None));
    assert!(view.instances[0].stale);
    let answer = operator
        .send("balances", ControlCommand::Rebuild, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        matches!(&answer, ControlAnswer::Rejected { reason } if reason.contains("gone")),
        "{answer}"
    );

    // A live standby beside the stale report: the standby's state shows; still nobody to send to.
    store
        .report(&[stale_report("b", "standby", chrono::Duration::zero())])
        .await
        .unwrap();
    let view = operator.projection("balances").await.unwrap().unwrap();
    assert_eq!(
        (view.state.label(), view.active.as_deref()),
        ("standby", None)
    );
}

/// A signup, in stream `signup-<user>`: the event does not repeat the user, its process manager takes it from the
/// input's origin.
#[derive(es_core::DomainEvent)]
#[event(category = "signup")]
enum Signup {
    SignedUp,
}

/// Greets each user once; remembers the origins it saw.
#[derive(Clone, Default)]
struct Greeter(std::sync::Arc<std::sync::Mutex<Vec<es_core::process::Origin>>>);

impl es_core::process::ProcessManager for Greeter {
    type Event = Signup;
    type State = bool;
    type Command = String;
    fn name(&self) -> &str {
        "greeter"
    }
    fn correlate(&self, _: &Signup, record: &es_core::RecordedEvent) -> Option<String> {
        record.stream_id.aggregate_id().map(str::to_owned)
    }
    fn apply(&self, _: bool, input: &es_core::process::Input<Signup>) -> bool {
        if let es_core::process::Input::Event { origin, .. } = input {
            self.0.lock().unwrap().push(origin.clone());
        }
        true
    }
    fn react(
        &self,
        _: &bool,
        input: &es_core::process::Input<Signup>,
    ) -> es_core::process::Reaction<String> {
        match input {
            es_core::process::Input::Event { origin, .. } => {
                es_core::process::Reaction::none().send(origin.stream.to_string())
            }
            _ => es_core::process::Reaction::none(),
        }
    }
}

/// Accepts every greeting.
struct Greetings;

#[async_trait]
impl es_core::process::CommandRouter for Greetings {
    type Command = String;
    async fn route(
        &self,
        _: &String,
        _: &es_core::process::CommandContext,
    ) -> Result<es_core::process::Outcome, es_core::process::RouteError> {
        Ok(es_core::process::Outcome::Accepted)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_manager_is_a_projection_to_the_operator() {
    let store = InMemoryEventStore::new();
    let greeter = Greeter::default();
    let running = es_core::process::ProcessRunner::new(greeter.clone(), Greetings, store.clone())
        .control_plane(store.clone(), control("worker-1"))
        .start(store.clone(), store.clone());
    let event = NewEvent::from_domain(&Signup::SignedUp, Default::default()).unwrap();
    let at = store
        .append(
            &StreamId::new("signup-ada").unwrap(),
            ExpectedVersion::NoStream,
            vec![event],
        )
        .await
        .unwrap()
        .last_position;
    running.wait_for(at, ANSWER).await.unwrap();
    let origins = greeter.0.lock().unwrap().clone();
    assert_eq!(origins.len(), 1);
    assert_eq!(
        (
            origins[0].stream.as_str(),
            origins[0].version.get(),
            origins[0].position
        ),
        ("signup-ada", 1, at)
    );

    let operator = Operator::new(store.clone());
    let view = until(&operator, "greeter", "its checkpoint reported", |p| {
        p.checkpoint == Some(at)
    })
    .await;
    assert_eq!(
        (view.state.label(), view.active.as_deref()),
        ("running", Some("worker-1"))
    );
    done(operator.send("greeter", ControlCommand::Pause, ANSWER)).await;
    until(&operator, "greeter", "paused", |p| {
        p.state.label() == "paused"
    })
    .await;
    done(operator.send("greeter", ControlCommand::Resume, ANSWER)).await;
    until(&operator, "greeter", "running again", |p| {
        p.state.label() == "running"
    })
    .await;
    done(operator.send(
        "greeter",
        ControlCommand::ResetTo {
            position: es_core::Position::START,
        },
        ANSWER,
    ))
    .await;
    let next = store
        .append(
            &StreamId::new("signup-bob").unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::from_domain(&Signup::SignedUp, Default::default()).unwrap()],
        )
        .await
        .unwrap()
        .last_position;
    running.wait_for(next, ANSWER).await.unwrap();
    let streams: Vec<String> = greeter
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|o| o.stream.to_string())
        .collect();
    assert_eq!(
        streams,
        ["signup-ada", "signup-bob"],
        "the replay from the start handled ada's signup once"
    );
    running.shutdown().await;
}
