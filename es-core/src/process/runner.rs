//! Running a process manager: inputs from the global stream and from its timers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::process::{
    CommandContext, CommandRouter, Input, Origin, Outcome, ProcessManager, ProcessRecord,
    ProcessStore, Reaction, RouteError, TimerChanges, command_id,
};
use crate::projection::runner::Supervisor;
use crate::projection::{
    CheckpointStore, DeadLetterStore, HandlerError, Projection, ProjectionOptions,
    ProjectionRunner, RunnerError, RunningProjections,
};
use crate::store::error::StoreError;
use crate::store::{EventStore, Metadata, Position, RecordedEvent};
use crate::telemetry;
use tracing::Instrument;

/// How many handled-input keys an instance remembers (older redeliveries are still harmless: the commands they
/// would re-send carry the same ids).
const HANDLED_KEPT: usize = 1_000;

/// How deep rejections may chain (a rejection's reaction rejected again, ...).
const MAX_REACTIONS: usize = 16;
/// How many times a step is redone after another writer saved the instance first.
const CONFLICT_RETRIES: usize = 5;

/// The shared machinery: one input at a time into one instance.
struct Engine<P, R, S> {
    process: P,
    router: R,
    store: S,
    name: String,
}

impl<P, R, S> Engine<P, R, S>
where
    P: ProcessManager,
    R: CommandRouter<Command = P::Command>,
    S: ProcessStore,
{
    /// Applies `input` (identified by `key`) to `instance`, sends the commands its reactions ask for, and saves the
    /// state with the timer changes. An input already handled is skipped.
    async fn handle(
        &self,
        instance: &str,
        key: &str,
        input: Input<P::Event>,
        metadata: &Metadata,
        mut timers: TimerChanges,
    ) -> Result<(), HandlerError> {
        for _ in 0..CONFLICT_RETRIES {
            let stored = self.store.load_process(&self.name, instance).await?;
            let (state, expected, mut handled) = match stored {
                Some(record) if record.handled.iter().any(|k| k == key) => return Ok(()),
                Some(record) => (
                    serde_json::from_value(record.state)?,
                    Some(record.version),
                    record.handled,
                ),
                None => (P::State::default(), None, Vec::new()),
            };
            let state = self.process.apply(state, &input);
            let first = self.process.react(&state, &input);
            let (state, changes) = self
                .run_reactions(instance, key, state, first, metadata, timers.clone())
                .await?;
            handled.push(key.to_owned());
            if handled.len() > HANDLED_KEPT {
                handled.drain(..handled.len() - HANDLED_KEPT);
            }
            let record = ProcessRecord {
                state: serde_json::to_value(&state)?,
                version: expected.map_or(1, |v| v + 1),
                handled,
            };
            match self
                .store
                .save_process(&self.name, instance, expected, record, changes)
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::ProcessConflict { .. }) => {
                    // Another delivery of this instance saved first: redo the step on its state. The commands
                    // already sent carry the same ids and are not executed twice.
                    timers = TimerChanges {
                        set: Vec::new(),
                        remove: timers.remove,
                    };
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(format!(
            "process `{}` instance `{instance}` kept changing under input {key}",
            self.name
        )
        .into())
    }

    /// Sends the commands of `reaction` and of the reactions to their rejections; returns the final state and the
    /// timer changes to save.
    async fn run_reactions(
        &self,
        instance: &str,
        key: &str,
        mut state: P::State,
        first: Reaction<P::Command>,
        metadata: &Metadata,
        mut timers: TimerChanges,
    ) -> Result<(P::State, TimerChanges), RouteError> {
        let mut queue = VecDeque::from([first]);
        let mut step = 0u32;
        let mut reactions = 0;
        while let Some(reaction) = queue.pop_front() {
            reactions += 1;
            timers.remove.extend(reaction.cancel_timers);
            timers.set.retain(|t| !timers.remove.contains(&t.name));
            timers.set.extend(reaction.set_timers);
            for command in &reaction.commands {
                let context = CommandContext {
                    command_id: command_id(&self.name, instance, key, step),
                    metadata: metadata.clone(),
                };
                let this_step = step;
                step += 1;
                let routed = self.router.route(command, &context).await;
                let outcome = match &routed {
                    Ok(Outcome::Accepted) => "ok",
                    Ok(Outcome::Rejected(_)) => "rejected",
                    Err(_) => "failed",
                };
                telemetry::record_process_command(&self.name, outcome);
                if let Outcome::Rejected(error) = routed? {
                    tracing::info!(process = %self.name, instance, step = this_step, %error, "command rejected");
                    let rejected = Input::Rejected {
                        step: this_step,
                        error,
                        at: Utc::now(),
                    };
                    state = self.process.apply(state, &rejected);
                    if reactions < MAX_REACTIONS {
                        queue.push_back(self.process.react(&state, &rejected));
                    }
                }
            }
        }
        Ok((state, timers))
    }

    /// Fires every timer due at `now`; returns how many fired.
    async fn fire_due_timers(&self, now: DateTime<Utc>) -> Result<usize, HandlerError> {
        let due = self.store.due_timers(&self.name, now, 100).await?;
        telemetry::record_timers_due(&self.name, due.len());
        for timer in &due {
            let key = format!("timer:{}:{}", timer.timer.name, timer.timer.at.to_rfc3339());
            let input = Input::TimerFired {
                name: timer.timer.name.clone(),
                at: timer.timer.at,
            };
            let metadata = Metadata::new()
                .with_correlation_id(correlation_id(&self.name, &timer.instance))
                .with_causation_id(Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()));
            let fired = TimerChanges {
                set: Vec::new(),
                remove: vec![timer.timer.name.clone()],
            };
            let span = tracing::info_span!(
                "process_timer",
                process = %self.name,
                instance = %timer.instance,
                timer = %timer.timer.name,
            );
            self.handle(&timer.instance, &key, input, &metadata, fired)
                .instrument(span)
                .await?;
            telemetry::record_timer_fired(&self.name);
        }
        Ok(due.len())
    }
}

/// The correlation id of an instance's commands when the causing event carries none.
fn correlation_id(process: &str, instance: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{process}\u{1f}{instance}").as_bytes(),
    )
}

/// The process's event side, as a projection: at-least-once delivery made harmless by the handled-input keys and
/// the deterministic command ids.
struct ProcessProjection<P, R, S> {
    engine: Arc<Engine<P, R, S>>,
}

#[async_trait]
impl<P, R, S> Projection for ProcessProjection<P, R, S>
where
    P: ProcessManager,
    R: CommandRouter<Command = P::Command>,
    S: ProcessStore + 'static,
{
    type Event = P::Event;

    /// Inputs handled before are recognised (each instance keeps the keys of its last 1,000) and commands carry
    /// ids derived from their cause, so a replay sends no command twice; an input older than its instance's last
    /// 1,000 is folded into the state again.
    fn idempotent(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        &self.engine.name
    }

    /// Instances are independent: their inputs may be handled at the same time, each instance's in order.
    fn key(&self, event: &P::Event, record: &RecordedEvent) -> Option<String> {
        Some(
            self.engine
                .process
                .correlate(event, record)
                .unwrap_or_default(),
        )
    }

    async fn handle(&self, event: P::Event, record: &RecordedEvent) -> Result<(), HandlerError> {
        let Some(instance) = self.engine.process.correlate(&event, record) else {
            return Ok(());
        };
        let metadata = Metadata::new()
            .with_correlation_id(
                record
                    .metadata
                    .correlation_id
                    .unwrap_or_else(|| correlation_id(&self.engine.name, &instance)),
            )
            .with_causation_id(record.event_id.as_uuid())
            .with_occurred_at(record.recorded_at);
        let key = format!("event:{}", record.event_id);
        let input = Input::Event {
            event,
            at: record.recorded_at,
            origin: Origin::of(record),
        };
        let span = tracing::info_span!(
            "process_step",
            process = %self.engine.name,
            instance = %instance,
            position = %record.position,
            event_type = %record.event_type,
        );
        telemetry::continue_trace(&span, record.metadata.traceparent());
        self.engine
            .handle(&instance, &key, input, &metadata, TimerChanges::default())
            .instrument(span)
            .await
    }
}

/// Configures and starts a process manager. `examples/src/shop.rs` has a full order process manager; in short:
///
/// ```
/// use std::time::Duration;
/// use es_core::{
///     Aggregate,
///     DomainEvent,
///     EventStore,
///     ExpectedVersion,
///     NewEvent,
///     RecordedEvent,
///     Repository,
///     StreamId,
/// };
/// use es_core::process::{ CommandContext, CommandRouter, Input, Outcome, ProcessManager, ProcessRunner, Reaction, RouteError, };
/// use es_memory::InMemoryEventStore;
///
/// // When a user signs up, give them a welcome credit of 5 on their wallet.
/// #[derive(DomainEvent)]
/// enum Signup { SignedUp { user: String } }
///
/// #[derive(Default, Clone)]
/// struct Wallet(u64);
/// #[derive(DomainEvent)]
/// #[event(aggregate = Wallet)]
/// enum WalletEvent { Credited { amount: u64 } }
/// impl Aggregate for Wallet {
///     const CATEGORY: &'static str = "wallet";
///     type Event = WalletEvent; type Command = u64; type Error = std::convert::Infallible;
///     fn handle(&self, amount: &u64) -> Result<Vec<WalletEvent>, Self::Error> { Ok(vec![WalletEvent::Credited { amount: *amount }]) }
///     fn apply(self, WalletEvent::Credited { amount }: &WalletEvent) -> Self { Wallet(self.0 + amount) }
/// }
///
/// struct Welcome;
/// impl ProcessManager for Welcome {
///     type Event = Signup;
///     type State = bool;
///     type Command = String; // the user to credit
///     fn name(&self) -> &str { "welcome" }
///     fn correlate(&self, Signup::SignedUp { user }: &Signup, _: &RecordedEvent) -> Option<String> { Some(user.clone()) }
///     fn apply(&self, _: bool, _: &Input<Signup>) -> bool { true }
///     fn react(&self, _: &bool, input: &Input<Signup>) -> Reaction<String> {
///         match input {
///             Input::Event { event: Signup::SignedUp { user }, .. } => Reaction::none().send(user.clone()),
///             _ => Reaction::none(),
///         }
///     }
/// }
///
/// struct Router(Repository<Wallet, InMemoryEventStore>);
/// #[async_trait::async_trait]
/// impl CommandRouter for Router {
///     type Command = String;
///     async fn route(&self, user: &String, context: &CommandContext) -> Result<Outcome, RouteError> {
///         context.execute(&self.0, user, &5).await
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let wallets = Repository::<Wallet, _>::new(store.clone());
/// let running = ProcessRunner::new(Welcome, Router(wallets.clone()), store.clone()).start(store.clone(), store.clone());
/// let signup = NewEvent::new("SignedUp", 1, serde_json::json!({ "user": "ada" }));
/// let at = store.append(&StreamId::new("signup-ada")?, ExpectedVersion::Any, vec![signup]).await?.last_position;
/// running.wait_for(at, Duration::from_secs(5)).await?;
/// assert_eq!(wallets.load("ada").await?.state.0, 5);
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ProcessRunner<P, R, S> {
    engine: Arc<Engine<P, R, S>>,
    options: ProjectionOptions,
    timer_poll: Duration,
    supervisor: Option<Arc<dyn Supervisor>>,
}

impl<P, R, S> std::fmt::Debug for ProcessRunner<P, R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRunner")
            .field("name", &self.engine.name)
            .finish_non_exhaustive()
    }
}

impl<P, R, S> ProcessRunner<P, R, S>
where
    P: ProcessManager,
    R: CommandRouter<Command = P::Command>,
    S: ProcessStore + 'static,
{
    /// A runner for `process`, sending its commands through `router` and keeping its state in `store`.
    pub fn new(process: P, router: R, store: S) -> Self {
        let name = process.name().to_owned();
        Self {
            engine: Arc::new(Engine {
                process,
                router,
                store,
                name,
            }),
            options: ProjectionOptions::default(),
            timer_poll: Duration::from_secs(1),
            supervisor: None,
        }
    }

    /// Runs `supervisor` beside its event side (the control plane's agent: see
    /// [`control_plane`](Self::control_plane)).
    pub(crate) fn supervised(mut self, supervisor: Arc<dyn Supervisor>) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// Batch size, retries, failure policy and concurrency of its event side (as a projection's). With
    /// [`ProjectionOptions::concurrency`] above 1, that many instances are worked on at once, each instance's
    /// inputs in order; inputs of different instances then no longer reach shared aggregates in the order of the
    /// global stream (which of two orders gets the last book depends on timing). The default, 1, keeps that order.
    pub fn options(mut self, options: ProjectionOptions) -> Self {
        self.options = options;
        self
    }

    /// How often due timers are looked for (default 1 s).
    pub fn timer_poll(mut self, interval: Duration) -> Self {
        self.timer_poll = interval;
        self
    }

    /// The process's event side as a projection, to run it with a runner of your own.
    pub fn projection(&self) -> impl Projection<Event = P::Event> {
        ProcessProjection {
            engine: Arc::clone(&self.engine),
        }
    }

    /// Fires every timer due at `now` (the timer task does this every poll; tests call it to control time).
    ///
    /// # Errors
    /// The first failure of a timer's step.
    pub async fn fire_due_timers(&self, now: DateTime<Utc>) -> Result<usize, HandlerError> {
        self.engine.fire_due_timers(now).await
    }

    /// Starts the event side (checkpointed in `checkpoints`) and the timer task.
    pub fn start<E, C>(self, events: E, checkpoints: C) -> RunningProcess
    where
        E: EventStore + Clone + 'static,
        C: CheckpointStore + DeadLetterStore + 'static,
    {
        let name = self.engine.name.clone();
        let mut runner = ProjectionRunner::new(events).with_projection(
            self.projection(),
            checkpoints,
            self.options.clone(),
        );
        if let Some(supervisor) = self.supervisor.clone() {
            runner = runner.supervised(supervisor);
        }
        let projections = runner.start();
        let (stop, mut stopped) = watch::channel(false);
        let engine = Arc::clone(&self.engine);
        let poll = self.timer_poll;
        let timers = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                if let Err(error) = engine.fire_due_timers(Utc::now()).await {
                    tracing::warn!(process = %engine.name, %error, "firing timers failed; retrying next poll");
                }
            }
        });
        let engine = Arc::clone(&self.engine);
        let fire: FireTimers = Arc::new(move |now| {
            let engine = Arc::clone(&engine);
            Box::pin(async move { engine.fire_due_timers(now).await })
        });
        RunningProcess {
            name,
            projections,
            stop,
            timers,
            fire,
        }
    }
}

type FireTimers = Arc<
    dyn Fn(DateTime<Utc>) -> futures::future::BoxFuture<'static, Result<usize, HandlerError>>
        + Send
        + Sync,
>;

/// A started process manager.
pub struct RunningProcess {
    name: String,
    projections: RunningProjections,
    stop: watch::Sender<bool>,
    timers: JoinHandle<()>,
    fire: FireTimers,
}

impl std::fmt::Debug for RunningProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProcess")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RunningProcess {
    /// Fires every timer due at `now` without waiting for the timer task (tests use it to move time forward).
    ///
    /// # Errors
    /// The first failure of a timer's step.
    pub async fn fire_due_timers(&self, now: DateTime<Utc>) -> Result<usize, HandlerError> {
        (self.fire)(now).await
    }

    /// Waits until the process has handled every event up to `position`.
    ///
    /// # Errors
    /// As [`RunningProjections::wait_for`].
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), RunnerError> {
        self.projections
            .wait_for(&self.name, position, timeout)
            .await
    }

    /// The event side's status (checkpoint, lag, dead letters).
    ///
    /// # Errors
    /// As [`RunningProjections::status`].
    pub async fn status(&self) -> Result<crate::projection::ProjectionStatus, RunnerError> {
        self.projections.status(&self.name).await
    }

    /// Stops the timer task and the event side (after the batch in flight).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.timers.await;
        self.projections.shutdown().await;
    }
}
