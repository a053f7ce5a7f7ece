//! [`RunningProjections`]: the handle to a started runner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::control::{Control, Reply, TaskStatus, ask};
use super::error::RunnerError;
use crate::projection::sampler::status_of;
use crate::projection::{DeadLetter, ProjectionState, ProjectionStatus};
use crate::store::{EventId, EventStore, Position};

/// How long [`RunningProjections::shutdown`] lets a batch in flight finish before it abandons it.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub(super) struct Handle {
    pub(super) control: mpsc::Sender<Control>,
    pub(super) status: watch::Receiver<TaskStatus>,
    pub(super) join: JoinHandle<()>,
}

/// The running projections: status, read-your-writes, rebuild, dead letters, shutdown.
///
/// Control requests ([`rebuild`](Self::rebuild), [`reset_to`](Self::reset_to), [`dead_letters`](Self::dead_letters),
/// [`redrive`](Self::redrive)) are carried out by the projection's task between batches (or during a retry's
/// wait) and always answer: done, or [`RunnerError::NotActive`] at once when this process is a standby or is
/// reconnecting, never a request queued for later.
pub struct RunningProjections {
    pub(super) projections: HashMap<String, Handle>,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) store: Arc<dyn EventStore>,
    /// The control-plane agent, whose last report says the projections stopped.
    pub(super) agent: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningProjections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.projections.keys().collect();
        f.debug_struct("RunningProjections")
            .field("projections", &names)
            .finish()
    }
}

impl RunningProjections {
    pub(super) fn handle(&self, name: &str) -> Result<&Handle, RunnerError> {
        self.projections
            .get(name)
            .ok_or_else(|| RunnerError::UnknownProjection(name.to_owned()))
    }

    /// Waits until projection `name` has processed `position` (an append's `last_position`), so a read of its
    /// read model sees that write.
    ///
    /// # Errors
    /// [`RunnerError::Timeout`], [`RunnerError::NotRunning`] when it stopped or failed,
    /// [`RunnerError::UnknownProjection`].
    pub async fn wait_for(
        &self,
        name: &str,
        position: Position,
        timeout: Duration,
    ) -> Result<(), RunnerError> {
        let mut status = self.handle(name)?.status.clone();
        let reached = tokio::time::timeout(timeout, async {
            loop {
                {
                    let now = status.borrow_and_update();
                    if now.checkpoint.is_some_and(|c| c >= position) {
                        return Ok(());
                    }
                    if matches!(
                        now.state,
                        ProjectionState::Stopped | ProjectionState::Failed { .. }
                    ) {
                        return Err(RunnerError::NotRunning {
                            name: name.to_owned(),
                            state: now.state.clone(),
                        });
                    }
                }
                if status.changed().await.is_err() {
                    let state = status.borrow().state.clone();
                    return Err(RunnerError::NotRunning {
                        name: name.to_owned(),
                        state,
                    });
                }
            }
        })
        .await;
        reached.unwrap_or_else(|_| {
            Err(RunnerError::Timeout {
                name: name.to_owned(),
                position,
                timeout,
                checkpoint: status.borrow().checkpoint,
            })
        })
    }

    /// Projection `name`'s state, without asking the store (so it answers while the database is down).
    ///
    /// # Errors
    /// [`RunnerError::UnknownProjection`].
    pub fn state(&self, name: &str) -> Result<ProjectionState, RunnerError> {
        Ok(self.handle(name)?.status.borrow().state.clone())
    }

    /// Projection `name`'s progress and health. Its lag counts the events after its checkpoint and those the
    /// store holds back behind an open transaction, which [`ProjectionStatus::held_back`] names.
    ///
    /// # Errors
    /// [`RunnerError::UnknownProjection`], [`RunnerError::Store`] when the head cannot be read.
    pub async fn status(&self, name: &str) -> Result<ProjectionStatus, RunnerError> {
        let handle = self.handle(name)?;
        let now = handle.status.borrow().clone();
        Ok(status_of(self.store.as_ref(), name, now).await?)
    }

    pub(super) async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(Reply<T>) -> Control,
    ) -> Result<T, RunnerError> {
        let handle = self.handle(name)?;
        ask(name, &handle.control, &handle.status, make).await
    }

    /// Empties projection `name`'s read model and checkpoint, and replays every event into it.
    ///
    /// # Errors
    /// [`RunnerError::Worker`] when the reset fails; [`RunnerError::NotActive`] on a standby;
    /// [`RunnerError::NotRunning`].
    pub async fn rebuild(&self, name: &str) -> Result<(), RunnerError> {
        self.ask(name, Control::Rebuild).await
    }

    /// Moves projection `name`'s checkpoint to `position` (events after it are handled next).
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn reset_to(&self, name: &str, position: Position) -> Result<(), RunnerError> {
        self.ask(name, |reply| Control::ResetTo(position, reply))
            .await
    }

    /// Projection `name`'s dead letters.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, RunnerError> {
        self.ask(name, Control::DeadLetters).await
    }

    /// Handles projection `name`'s dead letters again; returns how many now succeeded and how many still fail.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn redrive(&self, name: &str) -> Result<(usize, usize), RunnerError> {
        self.ask(name, Control::Redrive).await
    }

    /// Handles the dead letter of event `event_id` again: `true` when it succeeded (the letter is gone), `false` when
    /// it failed again (the letter stays, with the new error).
    ///
    /// # Errors
    /// [`RunnerError::NoDeadLetter`]; [`RunnerError::ParkedBehind`] under
    /// [`FailurePolicy::ParkStream`](crate::projection::FailurePolicy::ParkStream) when an earlier letter of its stream is still parked; as
    /// [`RunningProjections::rebuild`].
    pub async fn redrive_one(&self, name: &str, event_id: EventId) -> Result<bool, RunnerError> {
        self.ask(name, |reply| Control::RedriveOne(event_id, reply))
            .await
    }

    /// Drops the dead letter of event `event_id` without handling the event.
    ///
    /// # Errors
    /// [`RunnerError::NoDeadLetter`]; as [`RunningProjections::rebuild`].
    pub async fn discard(&self, name: &str, event_id: EventId) -> Result<(), RunnerError> {
        self.ask(name, |reply| Control::Discard(event_id, reply))
            .await
    }

    /// Stops projection `name` reading events (it keeps its claim and answers control requests) until
    /// [`resume`](Self::resume). Pausing through the store ([`ControlCommand::Pause`](crate::control::ControlCommand))
    /// also survives a takeover; this one lasts while this process runs the projection.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn pause(&self, name: &str) -> Result<(), RunnerError> {
        self.ask(name, Control::Pause).await
    }

    /// Lets a paused projection read on.
    ///
    /// # Errors
    /// As [`RunningProjections::rebuild`].
    pub async fn resume(&self, name: &str) -> Result<(), RunnerError> {
        self.ask(name, Control::Resume).await
    }

    /// Stops every projection after the batch in flight, and waits for them at most
    /// [`DEFAULT_SHUTDOWN_GRACE`]; see [`shutdown_within`](Self::shutdown_within).
    pub async fn shutdown(self) {
        self.shutdown_within(DEFAULT_SHUTDOWN_GRACE).await;
    }

    /// Stops every projection after the batch in flight, waiting at most `grace` for them (a batch blocked on a
    /// locked table or an unreachable server may never finish). A batch still running then is abandoned: a
    /// transactional worker's transaction rolls back, an at-least-once worker handles the batch again next time.
    pub async fn shutdown_within(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in self.projections {
            match tokio::time::timeout_at(deadline, &mut handle.join).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(projection = %name, %error, "projection task panicked");
                }
                Err(_) => {
                    tracing::warn!(projection = %name, ?grace, "projection did not stop in time; abandoning its batch");
                    handle.join.abort();
                }
            }
        }
        if let Some(mut agent) = self.agent
            && tokio::time::timeout_at(deadline, &mut agent).await.is_err()
        {
            agent.abort();
        }
    }
}
