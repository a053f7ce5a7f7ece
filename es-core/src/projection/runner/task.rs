//! The per-projection task: becoming active, following the feed, recovering from lost connections and claims.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::control::{Control, Supervisor, TaskStatus};
use super::error::RunnerError;
use crate::projection::ProjectionState;
use crate::projection::shared_feed::{Feed, FeedItem};
use crate::projection::worker::{Acquired, ProjectionWorker, WorkerError};
use crate::store::error::CorruptEvent;
use crate::store::{EventStore, Position, StoreError};
use crate::store::{FeedBatch, FeedStream};

/// The wait before a projection that lost its connection or claim tries to get them back.
pub(super) const RECOVERY_PAUSE: Duration = Duration::from_millis(500);

/// How retrying a failing event ended.
pub(super) enum Retried {
    /// It succeeded.
    Done,
    /// Its attempts ran out, with the last error and the number of attempts made.
    GaveUp(String, u32),
    /// A control request moved the checkpoint meanwhile, or the runner shuts down.
    Interrupted(Flow),
}

/// What a projection task does after a step.
pub(super) enum Flow {
    /// Read on.
    Next,
    /// The checkpoint moved (a rebuild or reset): subscribe again from it.
    Resubscribe,
    /// Leave the loop.
    Exit(Exit),
}

/// Why a projection task left its loop.
pub(super) enum Exit {
    Shutdown,
    Failed(String),
}

/// Why an active projection stopped being active.
pub(super) enum Ended {
    Exit(Exit),
    /// It lost its connection or claim: get them back and carry on.
    Lost(String),
}

/// How a wait ended.
pub(super) enum Waited {
    Elapsed,
    Flow(Flow),
}

pub(super) struct Task {
    pub(super) store: Arc<dyn EventStore>,
    pub(super) worker: Box<dyn ProjectionWorker>,
    pub(super) status: watch::Sender<TaskStatus>,
    pub(super) control: mpsc::Receiver<Control>,
    pub(super) shutdown: watch::Receiver<bool>,
    /// Under [`FailurePolicy::ParkStream`]: the streams with dead letters, whose later events are parked behind them.
    pub(super) parked: HashSet<String>,
    /// The runner's shared feed, when it runs several projections.
    pub(super) feed: Option<Arc<Feed>>,
    /// Paused by an operator: reads nothing until resumed.
    pub(super) paused: bool,
    /// Where pauses are kept across processes, when the runner has a control plane.
    pub(super) pauses: Option<Arc<dyn Supervisor>>,
}

/// Where a task reads from: its own filtered subscription (catching up), or the runner's feed (caught up).
pub(super) enum Source {
    Own(FeedStream),
    Shared(tokio::sync::broadcast::Receiver<Arc<FeedItem>>),
}

/// What a task's source gave.
pub(super) enum Pulled {
    Batch(FeedBatch),
    Shared(Arc<FeedItem>),
    Corrupt(Box<CorruptEvent>),
    Failed(StoreError),
    /// The source ended or the task fell behind the feed's buffer: read on its own again.
    Ended,
}

impl Source {
    pub(super) fn is_own(&self) -> bool {
        matches!(self, Self::Own(_))
    }

    pub(super) async fn next(&mut self) -> Pulled {
        match self {
            Self::Own(pages) => match pages.next().await {
                Some(Ok(batch)) => Pulled::Batch(batch),
                Some(Err(StoreError::Corrupt(corrupt))) => Pulled::Corrupt(corrupt),
                Some(Err(error)) => Pulled::Failed(error),
                None => Pulled::Ended,
            },
            Self::Shared(pages) => match pages.recv().await {
                Ok(item) => Pulled::Shared(item),
                Err(error) => {
                    tracing::debug!(%error, "left the shared feed; reading on its own");
                    Pulled::Ended
                }
            },
        }
    }
}

/// What woke a task up.
pub(super) enum Woke {
    Control(Control),
    Heartbeat,
    FeedMoved,
    Pulled(Pulled),
}

/// Waits until the feed hands out another page (forever without a feed).
pub(super) async fn moved(progress: &mut Option<watch::Receiver<Position>>) {
    if let Some(progress) = progress
        && progress.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

impl Task {
    pub(super) async fn run(mut self) {
        let name = self.worker.name().to_owned();
        let exit = self.lifecycle().await;
        self.worker.release().await;
        let state = match exit {
            Exit::Shutdown => ProjectionState::Stopped,
            Exit::Failed(error) => {
                tracing::error!(projection = %name, %error, "projection halted");
                ProjectionState::Failed { error }
            }
        };
        self.set_state(state);
    }

    pub(super) fn set_state(&self, state: ProjectionState) {
        self.status.send_if_modified(|s| {
            let changed = s.state != state;
            s.state = state;
            changed
        });
    }

    /// Running, or paused.
    pub(super) fn active_state(&self) -> ProjectionState {
        match self.paused {
            true => ProjectionState::Paused,
            false => ProjectionState::Running,
        }
    }

    pub(super) fn not_active(&self) -> RunnerError {
        RunnerError::NotActive {
            name: self.worker.name().to_owned(),
            state: self.status.borrow().state.clone(),
        }
    }

    /// Becomes active, runs until the claim is lost, and again; until shutdown or failure.
    pub(super) async fn lifecycle(&mut self) -> Exit {
        loop {
            if let Some(exit) = self.become_active().await {
                return exit;
            }
            match self.run_active().await {
                Ended::Exit(exit) => return exit,
                Ended::Lost(error) => {
                    tracing::warn!(projection = self.worker.name(), %error, "lost the active instance; getting it back");
                    self.set_state(ProjectionState::Lost { error });
                    if self.wait_inactive(RECOVERY_PAUSE).await {
                        return Exit::Shutdown;
                    }
                }
            }
        }
    }

    /// Asks the worker to become active until it is (`None`), refusing control requests meanwhile; `Some` on
    /// shutdown.
    pub(super) async fn become_active(&mut self) -> Option<Exit> {
        loop {
            let attempt = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return Some(Exit::Shutdown),
                attempt = self.worker.acquire() => attempt,
            };
            let wait = match attempt {
                Ok(Acquired::Active) => return None,
                Ok(Acquired::Standby { holder, retry_in }) => {
                    self.set_state(ProjectionState::Standby { holder });
                    retry_in
                }
                Err(error) => {
                    tracing::warn!(projection = self.worker.name(), %error, "cannot become the active instance; retrying");
                    self.set_state(ProjectionState::Lost {
                        error: error.to_string(),
                    });
                    RECOVERY_PAUSE
                }
            };
            if self.wait_inactive(wait).await {
                return Some(Exit::Shutdown);
            }
        }
    }

    /// Sleeps while not active, answering control requests with [`RunnerError::NotActive`]; true on shutdown.
    pub(super) async fn wait_inactive(&mut self, duration: Duration) -> bool {
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        loop {
            let control = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return true,
                () = &mut sleep => return false,
                Some(control) = self.control.recv() => control,
            };
            control.refuse(self.not_active());
        }
    }

    /// Runs the projection from its stored checkpoint while this instance is the active one.
    pub(super) async fn run_active(&mut self) -> Ended {
        let mut position = match self.worker.checkpoint().await {
            Ok(position) => position,
            Err(error) => return self.ended(error),
        };
        let dead_letters = match self.worker.dead_letters().await {
            Ok(letters) => {
                self.park_streams_of(&letters);
                letters.len()
            }
            Err(error) => return self.ended(error),
        };
        if let Some(pauses) = &self.pauses {
            match pauses.paused().await {
                Ok(paused) => self.paused = paused.iter().any(|p| p == self.worker.name()),
                Err(error) => return self.ended(error.into()),
            }
        }
        tracing::info!(projection = self.worker.name(), checkpoint = ?position, paused = self.paused, "running");
        let state = self.active_state();
        self.status.send_modify(|s| {
            s.state = state;
            s.checkpoint = position;
            s.dead_letters = dead_letters;
        });
        match self.follow(&mut position).await {
            Ok(exit) => Ended::Exit(exit),
            Err(error) => self.ended(error),
        }
    }

    /// What a worker error ends: a storage failure or a lost claim is recovered from (from the stored checkpoint,
    /// which may have moved if the failure hid a commit); being fenced off by another instance is not.
    pub(super) fn ended(&self, error: WorkerError) -> Ended {
        match error {
            WorkerError::Store(_) | WorkerError::Lost { .. } | WorkerError::NotActive { .. } => {
                Ended::Lost(error.to_string())
            }
            other => Ended::Exit(Exit::Failed(other.to_string())),
        }
    }

    /// Reads after `position` (its own filtered subscription, then the runner's feed once caught up) and processes
    /// batches until shutdown, failure, or a control message that moves the checkpoint (then reads again from it).
    pub(super) async fn follow(
        &mut self,
        position: &mut Option<Position>,
    ) -> Result<Exit, WorkerError> {
        let beat = self.worker.heartbeat_interval();
        let mut heartbeat = heartbeats(beat);
        let mut progress = self.feed.as_ref().map(|feed| feed.progress());
        'subscribe: loop {
            let mut source = self.source(*position, None);
            loop {
                let woke = tokio::select! {
                    biased;
                    _ = self.shutdown.wait_for(|stop| *stop) => return Ok(Exit::Shutdown),
                    Some(control) = self.control.recv() => Woke::Control(control),
                    _ = heartbeat.tick(), if beat.is_some() => Woke::Heartbeat,
                    () = moved(&mut progress), if source.is_own() && !self.paused => Woke::FeedMoved,
                    pulled = source.next(), if !self.paused => Woke::Pulled(pulled),
                };
                // Whether the worker did something, which shows it is alive as a heartbeat does.
                let worked = matches!(woke, Woke::Pulled(_));
                let flow = match woke {
                    Woke::Control(control) => match self.control(control, position).await {
                        true => Flow::Resubscribe,
                        false => Flow::Next,
                    },
                    Woke::Heartbeat => {
                        self.worker.heartbeat().await?;
                        Flow::Next
                    }
                    Woke::FeedMoved => Flow::Next,
                    Woke::Pulled(Pulled::Batch(batch)) => {
                        self.process_through(batch.events, batch.through, position)
                            .await?
                    }
                    Woke::Pulled(Pulled::Shared(item)) => match &*item {
                        FeedItem::Batch(batch) if Some(batch.through) > *position => {
                            let after = position.unwrap_or(Position::START);
                            let events = batch
                                .events
                                .iter()
                                .filter(|e| e.position > after)
                                .cloned()
                                .collect();
                            self.process_through(events, batch.through, position)
                                .await?
                        }
                        FeedItem::Corrupt(corrupt) if Some(corrupt.position) > *position => {
                            self.corrupt(corrupt, position).await?
                        }
                        _ => Flow::Next,
                    },
                    Woke::Pulled(Pulled::Corrupt(corrupt)) => {
                        self.corrupt(&corrupt, position).await?
                    }
                    Woke::Pulled(Pulled::Failed(error)) => return Err(WorkerError::Store(error)),
                    Woke::Pulled(Pulled::Ended) => continue 'subscribe,
                };
                match flow {
                    Flow::Next => {}
                    Flow::Resubscribe => continue 'subscribe,
                    Flow::Exit(exit) => return Ok(exit),
                }
                if source.is_own() {
                    source = self.source(*position, Some(source));
                }
                if worked {
                    heartbeat.reset();
                }
            }
        }
    }

    /// The runner's feed when it has not gone past `position`, else `own` (or a new own subscription).
    pub(super) fn source(&self, position: Option<Position>, own: Option<Source>) -> Source {
        if let Some(pages) = self.feed.as_ref().and_then(|feed| feed.join(position)) {
            return Source::Shared(pages);
        }
        own.unwrap_or_else(|| {
            let after = position.unwrap_or(Position::START);
            Source::Own(
                self.store
                    .subscribe_filtered(after, self.worker.feed_filter()),
            )
        })
    }
}

impl Task {
    /// Sleeps while active: heartbeats, carries out control requests, and stops early on shutdown or when a
    /// control request moved the checkpoint.
    pub(super) async fn wait_active(
        &mut self,
        duration: Duration,
        position: &mut Option<Position>,
    ) -> Result<Waited, WorkerError> {
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        let beat = self.worker.heartbeat_interval();
        let mut heartbeat = heartbeats(beat);
        loop {
            let control = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return Ok(Waited::Flow(Flow::Exit(Exit::Shutdown))),
                () = &mut sleep => return Ok(Waited::Elapsed),
                _ = heartbeat.tick(), if beat.is_some() => None,
                Some(control) = self.control.recv() => Some(control),
            };
            match control {
                None => self.worker.heartbeat().await?,
                Some(control) => {
                    if self.control(control, position).await {
                        return Ok(Waited::Flow(Flow::Resubscribe));
                    }
                }
            }
        }
    }

    pub(super) fn advance(&self, position: &mut Option<Position>, to: Position, handled: bool) {
        *position = Some(to);
        self.status.send_modify(|s| {
            s.checkpoint = Some(to);
            if handled {
                s.last_event_at = Some(Instant::now());
            }
        });
    }
}

/// A ticker for heartbeats every `beat` (first one a full period from now); an idle one when there are none.
pub(super) fn heartbeats(beat: Option<Duration>) -> tokio::time::Interval {
    let period = beat.unwrap_or(Duration::from_secs(3_600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}
