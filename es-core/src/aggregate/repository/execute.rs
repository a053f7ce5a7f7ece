//! Executing a command: load, decide, append with the version decided on; on a lost race, again on fresh state.

use std::time::Instant;

use tracing::Instrument;

use chrono::Utc;

use super::Repository;
use super::error::RepositoryError;
use super::loaded::{Executed, Loaded};
use crate::aggregate::Aggregate;
use crate::aggregate::event_id_for;
use crate::aggregate::snapshot::SnapshotDue;
use crate::store::error::{DuplicateReason, StoreError};
use crate::store::{EventStore, ExpectedVersion, Metadata, NewEvent, Version};
use crate::telemetry;
use uuid::Uuid;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Executes `command` on aggregate `id`: load, decide, append; on a lost race, again on fresh state.
    ///
    /// `metadata` is the command's: every event it produces carries its correlation id, causation id and
    /// key/values, and its `occurred_at` (the time of the call when unset).
    ///
    /// # Errors
    /// [`RepositoryError::Rejected`] when the aggregate refuses the command, [`RepositoryError::TooManyConflicts`]
    /// after losing every race, and the errors of [`Repository::load`].
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.execute_inner(id, None, command, metadata).await
    }

    pub(super) async fn execute_inner(
        &self,
        id: &str,
        command_id: Option<Uuid>,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "execute",
            category = A::CATEGORY,
            id,
            version = tracing::field::Empty,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self
            .decide_and_append(id, command_id, command, metadata)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(executed) if executed.replayed => "replayed",
            Ok(executed) if executed.attempts > 1 => "redecided",
            Ok(_) => "ok",
            Err(RepositoryError::Rejected { .. }) => "rejected",
            Err(RepositoryError::TooManyConflicts { .. }) => "conflict",
            Err(_) => "failed",
        };
        telemetry::record_execute(A::CATEGORY, outcome, started.elapsed());
        span.record("outcome", outcome);
        if let Ok(executed) = &result {
            span.record("version", executed.version.get());
            span.record("attempts", executed.attempts);
        }
        result
    }

    pub(super) async fn decide_and_append(
        &self,
        id: &str,
        command_id: Option<Uuid>,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_id(id)?;
        let mut metadata = Metadata {
            occurred_at: metadata.occurred_at.or_else(|| Some(Utc::now())),
            ..metadata
        };
        telemetry::stamp(&mut metadata);
        // This process's commands on the stream take turns here; the entry is the state the last one left.
        let slot = self.cache.slot(&stream);
        let mut entry = slot.entry.lock().await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Taken out: if this command fails half-way (or is dropped), the next one loads afresh.
            let cached = entry.take();
            if attempts == 1 && self.cache.keeps_state() {
                telemetry::record_cache_lookup(A::CATEGORY, cached.is_some());
            }
            let current = match cached {
                Some(cached) => cached,
                None => self.fold(&stream, None, None).await?,
            };
            let events = match current.state.handle(command) {
                Ok(events) if !events.is_empty() => events,
                decision => {
                    // Deciding nothing or refusing can be the echo of this very command having run already.
                    if let Some(command) = command_id {
                        let first = event_id_for(command, 0);
                        if self.store.contains_event(&stream, first).await? {
                            return self.replayed(&stream, attempts, &mut entry).await;
                        }
                    }
                    let state = current.state.clone();
                    let version = current.version;
                    self.keep(&mut entry, current);
                    return match decision {
                        Ok(events) => Ok(Executed {
                            state,
                            version,
                            events,
                            append: None,
                            attempts,
                            replayed: false,
                        }),
                        Err(source) => Err(RepositoryError::Rejected {
                            stream: stream.clone(),
                            source,
                        }),
                    };
                }
            };
            let mut batch = events
                .iter()
                .map(|event| NewEvent::from_domain(event, metadata.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(command) = command_id {
                for (index, event) in batch.iter_mut().enumerate() {
                    event.event_id = event_id_for(command, index);
                }
            }
            let expected = ExpectedVersion::Exact(current.version);
            match self.store.append(&stream, expected, batch).await {
                Ok(append) if append.replayed && command_id.is_some() => {
                    return self.replayed(&stream, attempts, &mut entry).await;
                }
                Ok(append) => {
                    let state = events.iter().fold(current.state, A::apply);
                    let due = SnapshotDue {
                        version: append.last_version,
                        events_since_snapshot: append.last_version.get()
                            - current.snapshot.unwrap_or(Version::INITIAL).get(),
                        new_events: events.len(),
                    };
                    let snapshot = match self.snapshot_after(&stream, &state, due).await {
                        true => Some(append.last_version),
                        false => current.snapshot,
                    };
                    self.keep(
                        &mut entry,
                        Loaded {
                            state: state.clone(),
                            version: append.last_version,
                            snapshot,
                        },
                    );
                    return Ok(Executed {
                        state,
                        version: append.last_version,
                        events,
                        append: Some(append),
                        attempts,
                        replayed: append.replayed,
                    });
                }
                Err(conflict @ StoreError::Conflict { .. }) if attempts >= self.max_attempts => {
                    return Err(RepositoryError::TooManyConflicts {
                        stream,
                        attempts,
                        source: conflict,
                    });
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    tracing::debug!(%stream, expected = %current.version, ?actual, attempts, "append lost a race; deciding again");
                    backoff(attempts).await;
                }
                // This command's events are in the stream already (it ran before, here or elsewhere).
                Err(StoreError::DuplicateEventId { reason, .. })
                    if command_id.is_some()
                        && !matches!(reason, DuplicateReason::StoredInOtherStream(_)) =>
                {
                    return self.replayed(&stream, attempts, &mut entry).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Keeps `loaded` as the stream's cached state, if the cache keeps states.
    pub(super) fn keep(&self, entry: &mut Option<Loaded<A>>, loaded: Loaded<A>) {
        if self.cache.keeps_state() {
            *entry = Some(loaded);
        }
    }
}

/// Waits before attempt `attempts + 1`: not at all after the first loss, then a random time up to 1 ms, 2 ms,
/// 4 ms, ... (at most 64 ms), so that writers who keep colliding spread out instead of starving one another.
pub(crate) async fn backoff(attempts: u32) {
    if attempts < 2 {
        return;
    }
    let ceiling_us = 1_000u64 << (attempts - 2).min(6);
    tokio::time::sleep(std::time::Duration::from_micros(fastrand::u64(
        0..=ceiling_us,
    )))
    .await;
}
