//! Loading: from the cache or the newest usable snapshot, then the stream's newer events folded in pages.

use std::ops::ControlFlow;
use std::time::Instant;

use tracing::Instrument;

use chrono::{DateTime, Utc};

use super::Repository;
use super::error::RepositoryError;
use super::loaded::{AsOf, Loaded};
use crate::aggregate::Aggregate;
use crate::event::DecodeError;
use crate::store::error::EventDecodeError;
use crate::store::fold::{EventView, FoldRead};
use crate::store::{EventStore, Position, StreamId, StreamRead, Version};
use crate::telemetry;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Loads aggregate `id` by folding its stream. A missing stream loads as the default state at version 0.
    ///
    /// # Errors
    /// [`RepositoryError::InvalidId`], [`RepositoryError::Decode`] naming the event that did not decode,
    /// [`RepositoryError::Store`].
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_id(id)?;
        self.load_stream(&stream).await
    }

    /// Loads aggregate `id` as it was at a version or a time ("what did the account look like on December 31?").
    /// A snapshot is used when it is not past the requested version; loads by time fold from the start.
    ///
    /// # Errors
    /// As [`Repository::load`].
    pub async fn load_as_of(
        &self,
        id: &str,
        as_of: AsOf,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_id(id)?;
        match as_of {
            AsOf::Version(version) => self.fold(&stream, Some(version), None).await,
            AsOf::Time(time) => self.fold(&stream, None, Some(time)).await,
        }
    }

    /// A fresh load; from this process's cached state when it has one (then only newer events are read, and
    /// `snapshot` is `None`: no snapshot was read).
    pub(super) async fn load_stream(
        &self,
        stream: &StreamId,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        match self.cache.peek(stream) {
            Some(cached) => {
                let start = Loaded {
                    snapshot: None,
                    ..cached
                };
                self.fold_from(stream, start, None, None).await
            }
            None => self.fold(stream, None, None).await,
        }
    }

    /// Folds `stream` from its newest usable snapshot (none when loading by time) up to `until` (a version) or
    /// through events recorded at or before `until_time`.
    pub(super) async fn fold(
        &self,
        stream: &StreamId,
        until: Option<Version>,
        until_time: Option<DateTime<Utc>>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let snapshot = match (&self.snapshots, until_time) {
            (Some(snapshots), None) => snapshots.load(stream, until).await,
            _ => None,
        };
        let start = match snapshot {
            Some((state, version)) => Loaded {
                state,
                version,
                snapshot: Some(version),
            },
            None => Loaded {
                state: A::default(),
                version: Version::INITIAL,
                snapshot: None,
            },
        };
        self.fold_from(stream, start, until, until_time).await
    }

    /// Folds the events of `stream` after `loaded` into it (see [`fold_pages`](Self::fold_pages)), recording the
    /// load's duration and events.
    pub(super) async fn fold_from(
        &self,
        stream: &StreamId,
        loaded: Loaded<A>,
        until: Option<Version>,
        until_time: Option<DateTime<Utc>>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let started = Instant::now();
        let from = loaded.version;
        let span =
            tracing::debug_span!("load", %stream, from = from.get(), to = tracing::field::Empty);
        let folded = self
            .fold_pages(stream, loaded, until, until_time)
            .instrument(span.clone())
            .await?;
        span.record("to", folded.version.get());
        let events = folded.version.get().saturating_sub(from.get());
        telemetry::record_load(A::CATEGORY, events, started.elapsed());
        Ok(folded)
    }

    /// Folds the events of `stream` after `loaded` into it, in pages of the configured size (by default one
    /// read), decoding each payload straight from the store's buffers.
    pub(super) async fn fold_pages(
        &self,
        stream: &StreamId,
        mut loaded: Loaded<A>,
        until: Option<Version>,
        until_time: Option<DateTime<Utc>>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        loop {
            let remaining = until.map_or(usize::MAX, |v| {
                usize::try_from(v.get().saturating_sub(loaded.version.get())).unwrap_or(usize::MAX)
            });
            let limit = self.page_size.min(remaining);
            if limit == 0 {
                return Ok(loaded);
            }
            let mut read = FoldRead::from(loaded.version.next()).limit(limit);
            if until_time.is_some() {
                read = read.with_recorded_at();
            }
            let (mut failed, mut past_time) = (None, false);
            let state = &mut loaded;
            let mut visit = |event: EventView<'_>| {
                if until_time.is_some_and(|time| event.recorded_at.is_some_and(|at| at > time)) {
                    past_time = true;
                    return ControlFlow::Break(());
                }
                match crate::store::fold::decode_view::<A::Event>(&event) {
                    Ok(decoded) => {
                        state.state = std::mem::take(&mut state.state).apply(&decoded);
                        state.version = event.version;
                        ControlFlow::Continue(())
                    }
                    Err(error) => {
                        failed = Some((
                            error,
                            event.version,
                            event.event_type.to_owned(),
                            event.schema_version,
                        ));
                        ControlFlow::Break(())
                    }
                }
            };
            let read_count = self.store.fold_stream(stream, read, &mut visit).await?;
            if let Some((source, version, event_type, schema_version)) = failed {
                return Err(self
                    .decode_error(stream, version, event_type, schema_version, source)
                    .await
                    .into());
            }
            if past_time || read_count < limit {
                return Ok(loaded);
            }
        }
    }

    /// The error for an event a load could not decode, with its position (looked up: loads do not read it).
    pub(super) async fn decode_error(
        &self,
        stream: &StreamId,
        version: Version,
        event_type: String,
        schema_version: u32,
        source: DecodeError,
    ) -> EventDecodeError {
        let read = StreamRead::forward().from(version).limit(1);
        let position = match self.store.read_stream(stream, read).await {
            Ok(events) => events.first().map_or(Position::START, |e| e.position),
            Err(error) => {
                tracing::warn!(%stream, %version, %error, "cannot read the position of an event that does not decode");
                Position::START
            }
        };
        EventDecodeError {
            stream: stream.clone(),
            version,
            position,
            event_type,
            schema_version,
            source,
        }
    }
}
