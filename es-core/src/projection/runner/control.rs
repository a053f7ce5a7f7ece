//! Control requests: how the running handle and the control plane reach a projection's task, and how the task
//! carries them out between batches.

use std::collections::HashSet;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::error::RunnerError;
use super::failure::event_at;
use super::task::Task;
use crate::projection::worker::{ApplyError, BatchError};
use crate::projection::{DeadLetter, FailurePolicy, ProjectionState};
use crate::store::{EventId, Position, StoreError};

/// What a projection task publishes.
#[derive(Clone, Debug)]
pub(crate) struct TaskStatus {
    pub(crate) state: ProjectionState,
    pub(crate) checkpoint: Option<Position>,
    pub(crate) last_event_at: Option<Instant>,
    /// Kept by the task (read at start, then counted), so a status call never waits for a busy task.
    pub(crate) dead_letters: usize,
}

impl Default for TaskStatus {
    fn default() -> Self {
        Self {
            state: ProjectionState::Starting,
            checkpoint: None,
            last_event_at: None,
            dead_letters: 0,
        }
    }
}

/// One projection of a running runner, as a [`Supervisor`] reaches it.
pub(crate) struct Controlled {
    pub(crate) name: String,
    pub(crate) control: mpsc::Sender<Control>,
    pub(crate) status: watch::Receiver<TaskStatus>,
}

/// What steers a runner's projections from outside the process: the control plane's agent
/// ([`ProjectionRunner::control_plane`]). Each projection reads the pauses it keeps when it becomes active; the
/// runner starts it beside the projections and waits for it on shutdown.
#[async_trait::async_trait]
pub(crate) trait Supervisor: Send + Sync {
    /// The names of the projections an operator paused.
    async fn paused(&self) -> Result<Vec<String>, StoreError>;

    /// Runs beside `projections` until `shutdown`.
    fn start(
        &self,
        projections: Vec<Controlled>,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()>;
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, RunnerError>>;

pub(crate) enum Control {
    Rebuild(Reply<()>),
    ResetTo(Position, Reply<()>),
    DeadLetters(Reply<Vec<DeadLetter>>),
    Redrive(Reply<(usize, usize)>),
    RedriveOne(EventId, Reply<bool>),
    Discard(EventId, Reply<()>),
    Pause(Reply<()>),
    Resume(Reply<()>),
}

impl Control {
    /// Answers with `error` instead of carrying the request out.
    pub(super) fn refuse(self, error: RunnerError) {
        match self {
            Self::Rebuild(reply)
            | Self::ResetTo(_, reply)
            | Self::Discard(_, reply)
            | Self::Pause(reply)
            | Self::Resume(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::DeadLetters(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::Redrive(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::RedriveOne(_, reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// Sends a control request to a projection's task and waits for its answer.
pub(crate) async fn ask<T>(
    name: &str,
    control: &mpsc::Sender<Control>,
    status: &watch::Receiver<TaskStatus>,
    make: impl FnOnce(Reply<T>) -> Control,
) -> Result<T, RunnerError> {
    let (reply, answer) = oneshot::channel();
    let not_running = || RunnerError::NotRunning {
        name: name.to_owned(),
        state: status.borrow().state.clone(),
    };
    control.send(make(reply)).await.map_err(|_| not_running())?;
    answer.await.map_err(|_| not_running())?
}

impl Task {
    /// Carries out a control request; true when it moved the checkpoint.
    pub(super) async fn control(
        &mut self,
        control: Control,
        position: &mut Option<Position>,
    ) -> bool {
        match control {
            Control::Rebuild(reply) => {
                let result = self.worker.reset(*position, None).await;
                let moved = result.is_ok();
                if moved {
                    *position = None;
                    self.status.send_modify(|s| s.checkpoint = None);
                }
                let _ = reply.send(result.map_err(RunnerError::from));
                moved
            }
            Control::ResetTo(to, reply) => {
                let result = self.worker.reset(*position, Some(to)).await;
                let moved = result.is_ok();
                if moved {
                    *position = Some(to);
                    self.status.send_modify(|s| s.checkpoint = Some(to));
                }
                let _ = reply.send(result.map_err(RunnerError::from));
                moved
            }
            Control::DeadLetters(reply) => {
                let _ = reply.send(self.worker.dead_letters().await.map_err(RunnerError::from));
                false
            }
            Control::Redrive(reply) => {
                let _ = reply.send(self.redrive().await);
                false
            }
            Control::RedriveOne(event_id, reply) => {
                let _ = reply.send(self.redrive_one(event_id).await);
                false
            }
            Control::Discard(event_id, reply) => {
                let _ = reply.send(self.discard(event_id).await);
                false
            }
            Control::Pause(reply) => {
                self.pause(true);
                let _ = reply.send(Ok(()));
                false
            }
            Control::Resume(reply) => {
                self.pause(false);
                let _ = reply.send(Ok(()));
                false
            }
        }
    }

    pub(super) fn pause(&mut self, paused: bool) {
        self.paused = paused;
        self.set_state(self.active_state());
        tracing::info!(
            projection = self.worker.name(),
            paused,
            "paused or resumed by an operator"
        );
    }

    /// The dead letter of `event_id`, and the letters of the projection.
    pub(super) async fn letter(
        &mut self,
        event_id: EventId,
    ) -> Result<(DeadLetter, Vec<DeadLetter>), RunnerError> {
        let letters = self.worker.dead_letters().await?;
        match letters.iter().find(|l| l.event_id == event_id) {
            Some(letter) => Ok((letter.clone(), letters)),
            None => Err(RunnerError::NoDeadLetter {
                name: self.worker.name().to_owned(),
                event_id,
            }),
        }
    }

    /// Handles one dead letter again; under [`FailurePolicy::ParkStream`] only the first of its stream.
    pub(super) async fn redrive_one(&mut self, event_id: EventId) -> Result<bool, RunnerError> {
        let (letter, letters) = self.letter(event_id).await?;
        if self.worker.options().failure_policy == FailurePolicy::ParkStream
            && let Some(earlier) = letters
                .iter()
                .find(|l| l.stream_id == letter.stream_id && l.position < letter.position)
        {
            return Err(RunnerError::ParkedBehind {
                name: self.worker.name().to_owned(),
                event_id,
                stream: letter.stream_id.clone(),
                earlier: earlier.event_id,
            });
        }
        let handled = self.redrive_letter(&letter).await?;
        self.recount_letters().await?;
        Ok(handled)
    }

    /// Handles `letter`'s event again: true when it succeeded (the worker removed the letter). When it fails, the
    /// letter is replaced by one with the new error, the attempts counted on and the time of this failure.
    pub(super) async fn redrive_letter(
        &mut self,
        letter: &DeadLetter,
    ) -> Result<bool, RunnerError> {
        let failure = match event_at(self.store.as_ref(), letter).await? {
            None => BatchError {
                index: 0,
                error:
                    "the stored event does not read back (corrupt); repair the row, then redrive"
                        .to_owned(),
                kept_before: false,
                transient: false,
                attempts: 1,
            },
            Some(event) => match self.worker.redrive(letter, &event).await {
                Ok(()) => return Ok(true),
                Err(ApplyError::Handler(failure)) => failure,
                Err(ApplyError::Worker(error)) => return Err(error.into()),
            },
        };
        tracing::info!(projection = self.worker.name(), event_id = %letter.event_id, error = %failure.error, "redrive failed; the dead letter stays");
        let replaced = DeadLetter {
            error: failure.error,
            attempts: letter.attempts.saturating_add(failure.attempts.max(1)),
            failed_at: Utc::now(),
            ..letter.clone()
        };
        self.worker.replace_dead_letter(replaced).await?;
        Ok(false)
    }

    /// Drops one dead letter.
    pub(super) async fn discard(&mut self, event_id: EventId) -> Result<(), RunnerError> {
        let (letter, _) = self.letter(event_id).await?;
        self.worker.discard(&letter).await?;
        tracing::info!(projection = self.worker.name(), %event_id, stream = %letter.stream_id, "dead letter discarded");
        self.recount_letters().await
    }

    /// Reads the dead letters again: the parked streams and the count in the status.
    pub(super) async fn recount_letters(&mut self) -> Result<(), RunnerError> {
        let letters = self.worker.dead_letters().await?;
        self.park_streams_of(&letters);
        self.status.send_modify(|s| s.dead_letters = letters.len());
        Ok(())
    }

    /// Handles the dead letters again, in position order. Under [`FailurePolicy::ParkStream`] a stream's letters
    /// stop at its first one that still fails: the later ones stay parked behind it, in order.
    pub(super) async fn redrive(&mut self) -> Result<(usize, usize), RunnerError> {
        let in_order = self.worker.options().failure_policy == FailurePolicy::ParkStream;
        let (mut done, mut remaining) = (0, Vec::new());
        let mut stopped = HashSet::new();
        for letter in self.worker.dead_letters().await? {
            if in_order && stopped.contains(&letter.stream_id) {
                remaining.push(letter);
                continue;
            }
            let handled = self.redrive_letter(&letter).await?;
            if handled {
                done += 1;
            } else {
                stopped.insert(letter.stream_id.clone());
                remaining.push(letter);
            }
        }
        self.park_streams_of(&remaining);
        self.status
            .send_modify(|s| s.dead_letters = remaining.len());
        Ok((done, remaining.len()))
    }
}
