//! Failure handling: a failing batch narrowed to its first failing event, retried with backoff, then the
//! projection's [`FailurePolicy`] applied (dead letter, parked stream, halt).

use std::collections::HashSet;
use std::time::Instant;

use chrono::Utc;
use tracing::Instrument;

use super::error::RunnerError;
use super::task::{Exit, Flow, Retried, Task, Waited};
use crate::projection::worker::WorkerError;
use crate::projection::worker::{ApplyError, BatchError};
use crate::projection::{DeadLetter, FailurePolicy};
use crate::store::error::CorruptEvent;
use crate::store::{EventId, EventStore, Position, RecordedEvent, StoreError, Version};
use crate::telemetry;

impl Task {
    /// Processes a page of the feed in batches of the projection's batch size; the last moves the checkpoint to
    /// `through` (past the events it read and did not want).
    pub(super) async fn process_through(
        &mut self,
        mut events: Vec<RecordedEvent>,
        through: Position,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        events.retain(|e| self.worker.wants(e.stream_id.as_str(), &e.event_type));
        let size = self.worker.options().batch_size.max(1);
        loop {
            let rest = match events.len() > size {
                true => events.split_off(size),
                false => Vec::new(),
            };
            let to = match rest.is_empty() {
                true => through,
                false => events.last().map_or(through, |e| e.position),
            };
            let span = tracing::info_span!(
                "projection_batch",
                projection = self.worker.name(),
                from = %position.unwrap_or(Position::START),
                to = %to,
                events = events.len(),
            );
            for event in &events {
                telemetry::link_trace(&span, &event.metadata);
            }
            match self.process(events, to, position).instrument(span).await? {
                Flow::Next if !rest.is_empty() => events = rest,
                flow => return Ok(flow),
            }
        }
    }

    /// A stored event that does not read back: skipped when the projection would not have wanted it, else the
    /// failure policy's (halt naming it, or a dead letter and on).
    pub(super) async fn corrupt(
        &mut self,
        corrupt: &CorruptEvent,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        if !self.worker.wants(&corrupt.stream, &corrupt.event_type) {
            return match self.worker.apply(&[], *position, corrupt.position).await {
                Ok(()) => {
                    self.advance(position, corrupt.position, false);
                    Ok(Flow::Next)
                }
                Err(ApplyError::Worker(error)) => Err(error),
                Err(ApplyError::Handler(failure)) => Err(WorkerError::Other {
                    projection: self.worker.name().to_owned(),
                    error: failure.error,
                }),
            };
        }
        let error = format!(
            "the stored event is corrupt (not retried): {}",
            corrupt.reason
        );
        let event = Failing {
            position: corrupt.position,
            event_id: corrupt.event_id,
            stream_id: corrupt.stream.clone(),
            version: corrupt.version,
            event_type: corrupt.event_type.clone(),
        };
        self.give_up(&event, error, 1, position).await
    }

    /// Applies one batch of wanted events and moves the checkpoint to `to`; on a failing event, retries it alone
    /// with backoff, then applies the failure policy. Events of parked streams ([`FailurePolicy::ParkStream`]) are
    /// parked in their place instead.
    pub(super) async fn process(
        &mut self,
        wanted: Vec<RecordedEvent>,
        to: Position,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        if Some(to) <= *position {
            return Ok(Flow::Next);
        }
        let mut start = 0;
        loop {
            // The events up to the next one of a parked stream go together; that one is parked.
            let end = (start..wanted.len())
                .find(|&i| self.parked.contains(wanted[i].stream_id.as_str()))
                .unwrap_or(wanted.len());
            if end == start && start < wanted.len() {
                self.park_behind(&wanted[start], position).await?;
                start += 1;
                continue;
            }
            let upto = match end {
                end if end == wanted.len() => to,
                end => wanted[end - 1].position,
            };
            if start == end && *position == Some(upto) {
                return Ok(Flow::Next);
            }
            let started = Instant::now();
            let (failing, failure) = match self
                .worker
                .apply(&wanted[start..end], *position, upto)
                .await
            {
                Ok(()) => {
                    telemetry::record_batch(self.worker.name(), end - start, started.elapsed());
                    self.advance(position, upto, start < end);
                    if end == wanted.len() {
                        return Ok(Flow::Next);
                    }
                    start = end;
                    continue;
                }
                Err(ApplyError::Worker(error)) => return Err(error),
                Err(ApplyError::Handler(failure)) => {
                    self.first_failure(&wanted[..end], start, failure, started, position)
                        .await?
                }
            };
            let event = &wanted[failing];
            match self.retry(event, failure, position).await? {
                Retried::Done => {}
                Retried::GaveUp(error, attempts) => {
                    match self
                        .give_up(&Failing::of(event), error, attempts, position)
                        .await?
                    {
                        Flow::Next => {}
                        other => return Ok(other),
                    }
                }
                Retried::Interrupted(flow) => return Ok(flow),
            }
            start = failing + 1;
        }
    }

    /// Finds the first failing event of a batch `wanted[start..]` that failed with `failure`, and makes the events
    /// before it handled: an at-least-once worker kept them; a transactional one rolled them back, so they are applied
    /// again on their own. When one of those fails in turn (a poison event before an undecodable one, which a worker
    /// may find first), it is the first failing event, and the events before it are applied again: each round
    /// looks at fewer events, so this ends. Returns the index of the first failing event and its failure.
    pub(super) async fn first_failure(
        &mut self,
        wanted: &[RecordedEvent],
        start: usize,
        mut failure: BatchError,
        started: Instant,
        position: &mut Option<Position>,
    ) -> Result<(usize, BatchError), WorkerError> {
        let Some(last) = wanted.len().checked_sub(1).filter(|&last| last >= start) else {
            return Err(WorkerError::Other {
                projection: self.worker.name().to_owned(),
                error: format!(
                    "a handler failed in a batch of no events: {}",
                    failure.error
                ),
            });
        };
        let mut failing = start + failure.index.min(last - start);
        loop {
            if failing == start {
                return Ok((failing, failure));
            }
            let before = wanted[failing - 1].position;
            if failure.kept_before {
                telemetry::record_batch(self.worker.name(), failing - start, started.elapsed());
                self.advance(position, before, true);
                return Ok((failing, failure));
            }
            match self
                .worker
                .apply(&wanted[start..failing], *position, before)
                .await
            {
                Ok(()) => {
                    telemetry::record_batch(self.worker.name(), failing - start, started.elapsed());
                    self.advance(position, before, true);
                    return Ok((failing, failure));
                }
                Err(ApplyError::Worker(error)) => return Err(error),
                Err(ApplyError::Handler(earlier)) => {
                    failing = start + earlier.index.min(failing - start - 1);
                    failure = earlier;
                }
            }
        }
    }

    /// Parks `event`, not handled, behind the earlier dead letter of its stream.
    pub(super) async fn park_behind(
        &mut self,
        event: &RecordedEvent,
        position: &mut Option<Position>,
    ) -> Result<(), WorkerError> {
        let error = format!(
            "not handled: parked behind an earlier dead letter of stream {}",
            event.stream_id
        );
        self.park(&Failing::of(event), error, 0, position).await
    }

    /// Under [`FailurePolicy::ParkStream`], parks the streams of `letters`.
    pub(super) fn park_streams_of(&mut self, letters: &[DeadLetter]) {
        self.parked = match self.worker.options().failure_policy {
            FailurePolicy::ParkStream => letters.iter().map(|l| l.stream_id.clone()).collect(),
            _ => HashSet::new(),
        };
    }

    /// Applies the failure policy to an event that failed for good: halt naming it, or park it and go on.
    pub(super) async fn give_up(
        &mut self,
        event: &Failing,
        error: String,
        attempts: u32,
        position: &mut Option<Position>,
    ) -> Result<Flow, WorkerError> {
        let id = event.event_id;
        match self.worker.options().failure_policy {
            FailurePolicy::Stop => Ok(Flow::Exit(Exit::Failed(format!(
                "event {}@{} (position {}, id {id}, type `{}`) failed after {attempts} attempts: {error}",
                event.stream_id, event.version, event.position, event.event_type
            )))),
            FailurePolicy::DeadLetter => {
                tracing::warn!(projection = self.worker.name(), position = %event.position, %error, "parking event as a dead letter");
                self.park(event, error, attempts, position).await?;
                Ok(Flow::Next)
            }
            FailurePolicy::ParkStream => {
                tracing::warn!(projection = self.worker.name(), position = %event.position, stream = %event.stream_id, %error, "parking the stream from this event on");
                self.park(event, error, attempts, position).await?;
                self.parked.insert(event.stream_id.clone());
                Ok(Flow::Next)
            }
        }
    }

    /// Parks `event` as a dead letter and moves the checkpoint to it.
    pub(super) async fn park(
        &mut self,
        event: &Failing,
        error: String,
        attempts: u32,
        position: &mut Option<Position>,
    ) -> Result<(), WorkerError> {
        let letter = DeadLetter {
            projection: self.worker.name().to_owned(),
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            error,
            attempts,
            failed_at: Utc::now(),
        };
        self.worker.park(letter, *position).await?;
        self.status.send_modify(|s| s.dead_letters += 1);
        self.advance(position, event.position, true);
        Ok(())
    }

    /// Retries `event` alone until it succeeds or its attempts run out. A transient failure (the handler returned a
    /// [`TransientError`](crate::projection::TransientError): a broker or service that is down) is retried without limit, at
    /// the longest backoff, until it succeeds or the runner shuts down; its checkpoint does not move meanwhile.
    /// Control requests are carried out during the waits; one that moves the checkpoint ends the retry.
    pub(super) async fn retry(
        &mut self,
        event: &RecordedEvent,
        failure: BatchError,
        position: &mut Option<Position>,
    ) -> Result<Retried, WorkerError> {
        let options = self.worker.options().clone();
        let (mut error, mut transient) = (failure.error, failure.transient);
        let mut attempt = failure.attempts.max(1);
        while transient || attempt < options.max_attempts {
            attempt = attempt.saturating_add(1);
            telemetry::record_retry(self.worker.name());
            tracing::debug!(projection = self.worker.name(), position = %event.position, attempt, transient, %error, "retrying event");
            if let Waited::Flow(flow) = self
                .wait_active(options.backoff_before(attempt), position)
                .await?
            {
                return Ok(Retried::Interrupted(flow));
            }
            let started = Instant::now();
            match self
                .worker
                .apply(std::slice::from_ref(event), *position, event.position)
                .await
            {
                Ok(()) => {
                    telemetry::record_batch(self.worker.name(), 1, started.elapsed());
                    self.advance(position, event.position, true);
                    return Ok(Retried::Done);
                }
                Err(ApplyError::Handler(failure)) => {
                    attempt = attempt.saturating_add(failure.attempts.saturating_sub(1));
                    error = failure.error;
                    transient = failure.transient;
                }
                Err(ApplyError::Worker(worker)) => return Err(worker),
            }
        }
        Ok(Retried::GaveUp(error, attempt))
    }
}

/// The parked event, read again by its position (a corrupt one, until it is repaired, is `None`).
pub(super) async fn event_at(
    store: &dyn EventStore,
    letter: &DeadLetter,
) -> Result<Option<RecordedEvent>, RunnerError> {
    match store.read_all(letter.position.before(), 1).await {
        Ok(events) => Ok(events
            .into_iter()
            .find(|e| e.event_id == letter.event_id && e.position == letter.position)),
        Err(StoreError::Corrupt(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The event a failure policy is applied to: a recorded one, or a stored row that did not read back.
pub(super) struct Failing {
    pub(super) position: Position,
    pub(super) event_id: EventId,
    pub(super) stream_id: String,
    pub(super) version: Version,
    pub(super) event_type: String,
}

impl Failing {
    pub(super) fn of(event: &RecordedEvent) -> Self {
        Self {
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id.to_string(),
            version: event.version,
            event_type: event.event_type.clone(),
        }
    }
}
