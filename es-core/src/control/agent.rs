//! A runner's side of the control plane: reports its projections, takes their requests from the store and
//! carries them out through the projections' tasks.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::ProjectionReport;
use crate::control::{ControlAnswer, ControlCommand, ControlOptions, ControlRequest, ControlStore};
use crate::process::{CommandRouter, ProcessManager, ProcessRunner, ProcessStore};
use crate::projection::ProjectionRunner;
use crate::projection::runner::{Control, Controlled, Supervisor, ask};
use crate::projection::{ProjectionState, RunnerError};
use crate::store::{EventStore, Position, StoreError};

impl Controlled {
    fn is_active(&self) -> bool {
        matches!(
            self.status.borrow().state,
            ProjectionState::Running | ProjectionState::Paused
        )
    }

    fn report(&self, instance: &str) -> ProjectionReport {
        let now = self.status.borrow().clone();
        let detail = match &now.state {
            ProjectionState::Standby {
                holder: Some(holder),
            } => Some(format!("held by {holder}")),
            state => state.error().map(str::to_owned),
        };
        let last_event_at = now.last_event_at.and_then(|at| {
            chrono::Duration::from_std(at.elapsed())
                .ok()
                .map(|ago| Utc::now() - ago)
        });
        ProjectionReport {
            projection: self.name.clone(),
            instance: instance.to_owned(),
            state: now.state.label().to_owned(),
            detail,
            checkpoint: now.checkpoint,
            last_event_at,
            reported_at: Utc::now(),
        }
    }
}

impl<S: EventStore + Clone + 'static> ProjectionRunner<S> {
    /// Takes part in the [control plane](crate::control): reports every projection to `store` and carries out the
    /// control requests written there for the projections this process runs (the others are left to their
    /// active instance). Pauses marked in `store` hold here too.
    pub fn control_plane(
        self,
        store: impl ControlStore + 'static,
        options: ControlOptions,
    ) -> Self {
        self.supervised(Arc::new(Agent {
            store: Arc::new(store),
            options,
        }))
    }
}

impl<P, R, S> ProcessRunner<P, R, S>
where
    P: ProcessManager,
    R: CommandRouter<Command = P::Command>,
    S: ProcessStore + 'static,
{
    /// Takes part in the [control plane](crate::control), as a projection does
    /// ([`ProjectionRunner::control_plane`]): its event side reports its state, checkpoint, lag, errors and dead
    /// letters under the process manager's name, and carries out pause, resume, rebuild, reset, redrive and discard
    /// written to `store`.
    pub fn control_plane(
        self,
        store: impl ControlStore + 'static,
        options: ControlOptions,
    ) -> Self {
        self.supervised(Arc::new(Agent {
            store: Arc::new(store),
            options,
        }))
    }
}

/// A runner's agent on the control plane.
struct Agent {
    store: Arc<dyn ControlStore>,
    options: ControlOptions,
}

#[async_trait::async_trait]
impl Supervisor for Agent {
    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        self.store.paused().await
    }

    /// Reports every `report_every` and serves requests every `poll` until shutdown; then reports once more, so
    /// the store shows the projections stopped here.
    fn start(
        &self,
        projections: Vec<Controlled>,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (store, options) = (Arc::clone(&self.store), self.options.clone());
        tokio::spawn(async move {
            serve_until(store.as_ref(), &options, &projections, shutdown).await;
            report_all(store.as_ref(), &options, &projections, Some("stopped")).await;
        })
    }
}

async fn serve_until(
    store: &dyn ControlStore,
    options: &ControlOptions,
    projections: &[Controlled],
    mut shutdown: watch::Receiver<bool>,
) {
    let mut poll = ticker(options.poll);
    let mut report = ticker(options.report_every);
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            _ = report.tick() => report_all(store, options, projections, None).await,
            _ = poll.tick() => {
                let active = projections.iter().filter(|p| p.is_active());
                futures::future::join_all(active.map(|p| serve(store, options, p))).await;
            }
        }
    }
}

/// Waits for the shutdown signal (without holding the watch's guard, so the loop's future stays `Send`).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

async fn report_all(
    store: &dyn ControlStore,
    options: &ControlOptions,
    projections: &[Controlled],
    state: Option<&str>,
) {
    let reports: Vec<ProjectionReport> = projections
        .iter()
        .map(|p| {
            let mut report = p.report(&options.instance);
            if let Some(state) = state {
                state.clone_into(&mut report.state);
            }
            report
        })
        .collect();
    if let Err(error) = store.report(&reports).await {
        tracing::warn!(%error, "cannot write the projections' reports; trying again");
    }
}

/// Takes the projection's pending requests and answers each.
async fn serve(store: &dyn ControlStore, options: &ControlOptions, projection: &Controlled) {
    let requests = match store
        .claim(&projection.name, &options.instance, Utc::now())
        .await
    {
        Ok(requests) => requests,
        Err(error) => {
            tracing::warn!(projection = %projection.name, %error, "cannot read control requests; trying again");
            return;
        }
    };
    for request in requests {
        let answer = carry_out(store, projection, &request).await;
        tracing::info!(projection = %projection.name, request = request.id, command = %request.command, %answer, "control request answered");
        if let Err(error) = store.answer(request.id, answer).await {
            tracing::warn!(projection = %projection.name, request = request.id, %error, "cannot write a control request's answer");
        }
    }
}

async fn carry_out(
    store: &dyn ControlStore,
    projection: &Controlled,
    request: &ControlRequest,
) -> ControlAnswer {
    let name = projection.name.as_str();
    let (control, status) = (&projection.control, &projection.status);
    let done = |detail: String| ControlAnswer::Done { detail };
    let result: Result<ControlAnswer, RunnerError> = async {
        Ok(match &request.command {
            ControlCommand::Pause | ControlCommand::Resume => {
                let pause = request.command == ControlCommand::Pause;
                store.set_paused(name, pause).await?;
                if pause {
                    ask(name, control, status, Control::Pause).await?;
                    done(format!("paused at {}", shown(status.borrow().checkpoint)))
                } else {
                    ask(name, control, status, Control::Resume).await?;
                    done(format!(
                        "resumed from {}",
                        shown(status.borrow().checkpoint)
                    ))
                }
            }
            ControlCommand::Rebuild => {
                ask(name, control, status, Control::Rebuild).await?;
                done("read model and checkpoint emptied; replaying from the start".to_owned())
            }
            ControlCommand::ResetTo { position } => {
                let position = *position;
                ask(name, control, status, |reply| {
                    Control::ResetTo(position, reply)
                })
                .await?;
                done(format!("checkpoint moved to {position}"))
            }
            ControlCommand::Redrive { event_id: None } => {
                let (redriven, failing) = ask(name, control, status, Control::Redrive).await?;
                done(format!("{redriven} redriven, {failing} still failing"))
            }
            ControlCommand::Redrive {
                event_id: Some(event_id),
            } => {
                let event_id = *event_id;
                match ask(name, control, status, |reply| {
                    Control::RedriveOne(event_id, reply)
                })
                .await?
                {
                    true => done(format!("event {event_id} handled; its dead letter is gone")),
                    false => ControlAnswer::Rejected {
                        reason: format!("event {event_id} failed again; its dead letter stays"),
                    },
                }
            }
            ControlCommand::Discard { event_id } => {
                let event_id = *event_id;
                ask(name, control, status, |reply| {
                    Control::Discard(event_id, reply)
                })
                .await?;
                done(format!("dead letter of event {event_id} discarded"))
            }
        })
    }
    .await;
    result.unwrap_or_else(|error| ControlAnswer::Rejected {
        reason: error.to_string(),
    })
}

fn shown(position: Option<Position>) -> String {
    position.map_or_else(|| "the start".to_owned(), |p| format!("checkpoint {p}"))
}
