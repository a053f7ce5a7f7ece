//! The operator's side of the control plane: every projection's status, read from the store by any process, and
//! control requests with their answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::control::{
    ControlAnswer, ControlCommand, ControlStore, OverviewState, ProjectionReport, RequestState,
};
use crate::process::{ProcessInstance, ProcessStore};
use crate::projection::{CheckpointStore, DeadLetter, DeadLetterStore};
use crate::store::HeldBack;
use crate::store::{EventId, EventStore, Position, RecordedEvent, StoreError};

/// How often [`Operator::send`] looks for the answer.
const ANSWER_POLL: Duration = Duration::from_millis(50);

/// A report older than this is stale: its process stopped reporting (gone, paused, cut off).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(10);

/// One instance's report, and whether it is stale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceReport {
    /// The report.
    #[serde(flatten)]
    pub report: ProjectionReport,
    /// Older than the operator's `stale_after`: the process stopped reporting.
    pub stale: bool,
}

/// A projection as an operator sees it: what its instances report, and its progress read from the store.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProjectionOverview {
    /// The projection.
    pub name: String,
    /// The state that matters: the active instance's (`running`, `paused`), else `failed` when a live instance
    /// failed, else the freshest live report's; `gone` when every report is stale.
    pub state: OverviewState,
    /// The instance running it, if a live one does.
    pub active: Option<String>,
    /// The error of a failed or lost instance, or the holder a standby sees.
    pub detail: Option<String>,
    /// Marked paused in the store.
    pub paused: bool,
    /// Its stored checkpoint.
    pub checkpoint: Option<Position>,
    /// The newest position of the store.
    pub head: Option<Position>,
    /// Events after the checkpoint (including those held back behind an open transaction).
    pub lag_events: u64,
    /// Age of the oldest event it has not handled, 0 when none.
    pub lag_seconds: f64,
    /// The open transaction holding back the global order, when committed events wait behind it (a stall that is
    /// not the projection's fault: see [`HeldBack`]).
    pub held_back: Option<HeldBack>,
    /// When it last handled an event, as its instances report.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Its dead letters.
    pub dead_letters: usize,
    /// Every instance's report.
    pub instances: Vec<InstanceReport>,
}

/// What an operator does: look at every projection, its dead letters and the process manager instances, and send control
/// requests that whichever process runs the projection carries out. Works from any process connected to the store
/// (the `es` CLI and admin page use it).
///
/// ```
/// use std::time::Duration;
/// use es_core::control::{ControlCommand, ControlOptions, Operator};
/// use es_core::projection::{HandlerError, Projection, ProjectionOptions, ProjectionRunner};
/// use es_core::{DomainEvent, RecordedEvent};
/// use es_memory::InMemoryEventStore;
///
/// #[derive(DomainEvent)]
/// enum Light { SwitchedOn }
/// struct Count;
/// #[es_core::async_trait]
/// impl Projection for Count {
///     type Event = Light;
///     fn name(&self) -> &str { "count" }
///     async fn handle(&self, _: Light, _: &RecordedEvent) -> Result<(), HandlerError> { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let running = ProjectionRunner::new(store.clone())
///     .with_projection(Count, store.clone(), ProjectionOptions::default())
///     .control_plane(store.clone(), ControlOptions::new().poll(Duration::from_millis(20)))
///     .start();
/// let operator = Operator::new(store.clone());
/// # while operator.projection("count").await?.and_then(|p| p.active).is_none() {
/// #     tokio::time::sleep(Duration::from_millis(10)).await;
/// # }
/// let answer = operator.send("count", ControlCommand::Pause, Duration::from_secs(5)).await?;
/// assert!(answer.is_done(), "{answer}");
/// assert!(operator.projection("count").await?.is_some_and(|p| p.paused));
/// running.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Operator<S> {
    store: S,
    stale_after: Duration,
}

impl<S> Operator<S>
where
    S: EventStore + CheckpointStore + DeadLetterStore + ControlStore + ProcessStore,
{
    /// An operator of `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            stale_after: DEFAULT_STALE_AFTER,
        }
    }

    /// How old a report may be before its instance counts as gone (default [`DEFAULT_STALE_AFTER`]).
    pub fn stale_after(mut self, age: Duration) -> Self {
        self.stale_after = age;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every projection that any runner reported, by name.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn projections(&self) -> Result<Vec<ProjectionOverview>, StoreError> {
        self.overviews(None).await
    }

    /// One projection; `None` when no runner ever reported it.
    ///
    /// # Errors
    /// As [`projections`](Self::projections).
    pub async fn projection(&self, name: &str) -> Result<Option<ProjectionOverview>, StoreError> {
        Ok(self.overviews(Some(name)).await?.pop())
    }

    /// The stored event at `position`; `None` when there is none (or it is not visible yet).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read, [`StoreError::Corrupt`] when the row does not read back.
    pub async fn event_at(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        Ok(self
            .store
            .read_all(position.before(), 1)
            .await?
            .into_iter()
            .find(|event| event.position == position))
    }

    /// The overviews of every reported projection, or of `only`.
    async fn overviews(&self, only: Option<&str>) -> Result<Vec<ProjectionOverview>, StoreError> {
        let mut by_name: BTreeMap<String, Vec<ProjectionReport>> = BTreeMap::new();
        for report in self.store.reports().await? {
            if only.is_none_or(|name| name == report.projection) {
                by_name
                    .entry(report.projection.clone())
                    .or_default()
                    .push(report);
            }
        }
        if by_name.is_empty() {
            return Ok(Vec::new());
        }
        let paused = self.store.paused().await?;
        let head = self.store.head().await?;
        let held_back = self.store.held_back().await?;
        let mut overviews = Vec::with_capacity(by_name.len());
        for (name, reports) in by_name {
            let is_paused = paused.contains(&name);
            overviews.push(
                self.overview(name, reports, is_paused, head, held_back.as_ref())
                    .await?,
            );
        }
        Ok(overviews)
    }

    async fn overview(
        &self,
        name: String,
        reports: Vec<ProjectionReport>,
        paused: bool,
        head: Option<Position>,
        held_back: Option<&HeldBack>,
    ) -> Result<ProjectionOverview, StoreError> {
        let now = Utc::now();
        let stale_after =
            chrono::Duration::from_std(self.stale_after).unwrap_or(chrono::Duration::MAX);
        let instances: Vec<InstanceReport> = reports
            .into_iter()
            .map(|report| InstanceReport {
                stale: now - report.reported_at > stale_after,
                report,
            })
            .collect();
        let live: Vec<&ProjectionReport> = instances
            .iter()
            .filter(|i| !i.stale)
            .map(|i| &i.report)
            .collect();
        let active = live.iter().find(|r| r.is_active()).copied();
        let shown = active
            .or_else(|| live.iter().find(|r| r.state == "failed").copied())
            .or_else(|| live.iter().max_by_key(|r| r.reported_at).copied());
        let checkpoint = self.store.load_checkpoint(&name).await?;
        let lag_events = match head {
            None => 0,
            Some(_) => {
                self.store
                    .count_after(checkpoint.unwrap_or(Position::START))
                    .await?
                    + held_back.map_or(0, |held| held.events)
            }
        };
        let lag_seconds = match lag_events {
            0 => 0.0,
            _ => crate::projection::lag_seconds(&self.store, checkpoint).await?,
        };
        let dead_letters = self.store.dead_letters(&name).await?.len();
        Ok(ProjectionOverview {
            state: shown.map_or(OverviewState::Gone, |r| OverviewState::from_label(&r.state)),
            active: active.map(|r| r.instance.clone()),
            detail: shown.and_then(|r| r.detail.clone()),
            last_event_at: instances
                .iter()
                .filter_map(|i| i.report.last_event_at)
                .max(),
            name,
            paused,
            checkpoint,
            head,
            lag_events,
            lag_seconds,
            held_back: held_back.cloned(),
            dead_letters,
            instances,
        })
    }

    /// Projection `name`'s dead letters, in position order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.store.dead_letters(name).await
    }

    /// Up to `limit` process manager instances, of `process` or of all, by process then instance.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn processes(
        &self,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProcessInstance>, StoreError> {
        self.store.list_processes(process, limit).await
    }

    /// The dead letters of `projection`, or of every reported projection, in projection then position order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn dead_letters_of(
        &self,
        projection: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let names = match projection {
            Some(name) => vec![name.to_owned()],
            None => self
                .store
                .reports()
                .await?
                .into_iter()
                .map(|r| r.projection)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        let mut letters = Vec::new();
        for name in &names {
            letters.extend(self.store.dead_letters(name).await?);
        }
        Ok(letters)
    }

    /// Projection `name`'s dead letter for `event_id`; `None` when it has none.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn dead_letter(
        &self,
        name: &str,
        event_id: EventId,
    ) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self
            .store
            .dead_letters(name)
            .await?
            .into_iter()
            .find(|l| l.event_id == event_id))
    }

    /// Instance `instance` of process manager `process`, with its timers; `None` when there is no such instance.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<ProcessInstance>, StoreError> {
        Ok(self
            .store
            .list_processes(Some(process), usize::MAX)
            .await?
            .into_iter()
            .find(|i| i.instance == instance))
    }

    /// Writes `command` for projection `name` and waits up to `timeout` for the instance that runs it to answer.
    ///
    /// Refused at once ([`ControlAnswer::Rejected`]) when no live instance runs the projection. Without an answer in
    /// time the request is withdrawn ([`ControlAnswer::TimedOut`] with `claimed_by: None`: it will not be carried
    /// out), unless an instance already took it (then `claimed_by` names it and it may still finish).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read or written.
    pub async fn send(
        &self,
        name: &str,
        command: ControlCommand,
        timeout: Duration,
    ) -> Result<ControlAnswer, StoreError> {
        let Some(projection) = self.projection(name).await? else {
            return Ok(ControlAnswer::Rejected {
                reason: format!("no runner reports a projection named `{name}`"),
            });
        };
        if projection.active.is_none() {
            return Ok(ControlAnswer::Rejected {
                reason: format!(
                    "no live instance runs projection `{name}` (it is {}{})",
                    projection.state,
                    projection
                        .detail
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            });
        }
        let expires =
            Utc::now() + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let request = self.store.submit(name, command, expires).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some(RequestState::Answered { answer }) =
                self.store.request_state(request.id).await?
            {
                return Ok(answer);
            }
            tokio::time::sleep(ANSWER_POLL.min(timeout)).await;
        }
        Ok(match self.store.withdraw(request.id).await? {
            Some(RequestState::Answered { answer }) => answer,
            Some(RequestState::Claimed { instance }) => ControlAnswer::TimedOut {
                claimed_by: Some(instance),
            },
            Some(RequestState::Pending) | None => ControlAnswer::TimedOut { claimed_by: None },
        })
    }
}
