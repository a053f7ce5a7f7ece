//! The in-memory log: every event once, in global order, with indexes by stream and by event id.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;

use crate::query_index::QueryIndex;
use es_core::backend::{StoredAt, retry_of};
use es_core::control::StreamSummary;
use es_core::evolution::StoredEventType;
use es_core::store::{
    AppendCondition, AppendResult, Direction, DuplicateReason, EventLimits, MultiParts, Query,
    QueryRead, StreamConflict,
};
use es_core::{
    EventId, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError, StreamId, StreamRead,
    Version,
};

/// The events and their indexes. Sequence number `n` (1-based) is `events[n - 1]`.
#[derive(Debug, Default)]
pub(crate) struct Log {
    events: Vec<RecordedEvent>,
    streams: HashMap<StreamId, Vec<usize>>,
    ids: HashMap<EventId, usize>,
    queries: QueryIndex,
}

impl Log {
    /// Whether `event_id` is stored in `stream`.
    pub(crate) fn contains(&self, stream: &StreamId, event_id: EventId) -> bool {
        self.ids
            .get(&event_id)
            .is_some_and(|&index| self.events[index].stream_id == *stream)
    }

    /// The sequence number of the last event (0 when empty).
    pub(crate) fn head(&self) -> u64 {
        self.events.len() as u64
    }

    /// Checks and applies one append. Writes nothing unless it returns `Ok` with `replayed == false`.
    pub(crate) fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
        limits: &EventLimits,
    ) -> Result<AppendResult, StoreError> {
        limits.check(stream, &batch)?;
        if let Some(replay) = self.replay(stream, expected, &batch)? {
            return Ok(replay);
        }
        let current = self.streams.get(stream).map(|indexes| indexes.len() as u64);
        if !expected.accepts(current.map(Version::new)) {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: current.map(Version::new),
            });
        }
        let recorded_at = Utc::now();
        let base_version = current.unwrap_or(0);
        let first_index = self.events.len();
        let indexes = self.streams.entry(stream.clone()).or_default();
        for (offset, event) in batch.into_iter().enumerate() {
            let index = first_index + offset;
            let sequence = index as u64 + 1;
            indexes.push(index);
            self.ids.insert(event.event_id, index);
            self.events.push(RecordedEvent {
                stream_id: stream.clone(),
                version: Version::new(base_version + offset as u64 + 1),
                position: Position::new(sequence, sequence),
                event_id: event.event_id,
                event_type: event.event_type.into_owned(),
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
                recorded_at,
                tags: event.tags,
            });
            self.queries.add(index, &self.events[index]);
        }
        Ok(self.result(first_index, self.events.len() - 1, false))
    }

    /// Checks and applies a multi-stream append (validated by the caller), all or nothing.
    pub(crate) fn append_multi(
        &mut self,
        parts: MultiParts,
        limits: &EventLimits,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let MultiParts {
            appends,
            checks,
            condition,
        } = parts;
        let mut replays = Vec::with_capacity(appends.len());
        for part in &appends {
            limits.check(&part.stream, &part.events)?;
            replays.push(self.replay(&part.stream, part.expected, &part.events)?);
        }
        if replays.iter().all(Option::is_some) {
            return Ok(replays.into_iter().flatten().collect());
        }
        if let Some(stored) = appends.iter().zip(&replays).find(|(_, r)| r.is_some()) {
            // Part of it is stored (by other appends): not a retry of this one.
            return Err(StoreError::DuplicateEventId {
                stream: stored.0.stream.clone(),
                event_id: stored.0.events[0].event_id,
                reason: DuplicateReason::PartOfBatchStored,
            });
        }
        let expectations = appends
            .iter()
            .map(|a| (&a.stream, a.expected))
            .chain(checks.iter().map(|(s, e)| (s, *e)));
        let conflicts: Vec<StreamConflict> = expectations
            .filter_map(|(stream, expected)| {
                let actual = self
                    .streams
                    .get(stream)
                    .map(|indexes| Version::new(indexes.len() as u64));
                (!expected.accepts(actual)).then(|| StreamConflict {
                    stream: stream.clone(),
                    expected,
                    actual,
                })
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(StoreError::Conflicts { conflicts });
        }
        if let Some(condition) = &condition {
            self.check(condition)?;
        }
        appends
            .into_iter()
            .map(|part| self.append(&part.stream, part.expected, part.events, limits))
            .collect()
    }

    /// The events matching `query` after `after`, and where the read stood.
    pub(crate) fn read_query(&self, query: &Query, after: Option<Position>) -> QueryRead {
        QueryRead {
            events: self
                .queries
                .matching(query, Self::start(after), &self.events)
                .into_iter()
                .map(|index| self.events[index].clone())
                .collect(),
            after: self.events.last().map(|e| e.position),
        }
    }

    /// Fails when an event matching the condition's query is stored after its position.
    fn check(&self, condition: &AppendCondition) -> Result<(), StoreError> {
        let matching =
            self.queries
                .matching(&condition.query, Self::start(condition.after), &self.events);
        match matching.first().map(|&index| &self.events[index]) {
            None => Ok(()),
            Some(event) => Err(StoreError::ConditionFailed {
                after: condition.after,
                position: event.position,
                stream: event.stream_id.clone(),
                event_type: event.event_type.clone(),
            }),
        }
    }

    /// The index of the first event after `after` (positions are sequence numbers, 1-based).
    fn start(after: Option<Position>) -> usize {
        after.map_or(0, |p| usize::try_from(p.commit).unwrap_or(usize::MAX))
    }

    /// `Some` when every id of `batch` is already stored as a run this append could have written; an error when
    /// the ids are stored in any other way; `None` when none is stored ([`retry_of`]).
    fn replay(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        batch: &[NewEvent],
    ) -> Result<Option<AppendResult>, StoreError> {
        let current = self
            .streams
            .get(stream)
            .map(|indexes| Version::new(indexes.len() as u64));
        let ids: Vec<EventId> = batch.iter().map(|e| e.event_id).collect();
        let stored: Vec<Option<StoredAt<'_>>> = ids
            .iter()
            .map(|id| {
                self.ids.get(id).map(|&index| {
                    let event = &self.events[index];
                    StoredAt {
                        stream: event.stream_id.as_str(),
                        version: event.version,
                        position: event.position,
                    }
                })
            })
            .collect();
        Ok(
            retry_of(stream, expected, current, &ids, &stored)?.map(|(first, last)| AppendResult {
                first_version: first.version,
                last_version: last.version,
                first_position: first.position,
                last_position: last.position,
                replayed: true,
            }),
        )
    }

    fn result(&self, first: usize, last: usize, replayed: bool) -> AppendResult {
        AppendResult {
            first_version: self.events[first].version,
            last_version: self.events[last].version,
            first_position: self.events[first].position,
            last_position: self.events[last].position,
            replayed,
        }
    }

    pub(crate) fn read_stream(&self, stream: &StreamId, read: StreamRead) -> Vec<RecordedEvent> {
        self.select(stream, read).into_iter().cloned().collect()
    }

    /// The events of `read`, in the order it asks for, by reference.
    pub(crate) fn select(&self, stream: &StreamId, read: StreamRead) -> Vec<&RecordedEvent> {
        let Some(indexes) = self.streams.get(stream) else {
            return Vec::new();
        };
        let event = |index: &usize| &self.events[*index];
        match read.direction {
            Direction::Forward => {
                let skip = read.from.map_or(0, |v| v.get().saturating_sub(1));
                let skip = usize::try_from(skip).unwrap_or(usize::MAX);
                indexes
                    .iter()
                    .skip(skip)
                    .take(read.limit)
                    .map(event)
                    .collect()
            }
            Direction::Backward => {
                let end = read
                    .from
                    .map_or(indexes.len(), |v| {
                        usize::try_from(v.get()).unwrap_or(usize::MAX)
                    })
                    .min(indexes.len());
                indexes[..end]
                    .iter()
                    .rev()
                    .take(read.limit)
                    .map(event)
                    .collect()
            }
        }
    }

    /// Every (type, schema version) pair with its count, sorted.
    pub(crate) fn event_types(&self) -> Vec<StoredEventType> {
        let mut counts: BTreeMap<(&str, u32), u64> = BTreeMap::new();
        for event in &self.events {
            *counts
                .entry((&event.event_type, event.schema_version))
                .or_default() += 1;
        }
        counts
            .into_iter()
            .map(|((event_type, schema_version), count)| StoredEventType {
                event_type: event_type.to_owned(),
                schema_version,
                count,
            })
            .collect()
    }

    /// Up to `limit` events of one pair: the oldest half and the newest half, in global order.
    pub(crate) fn sample(
        &self,
        event_type: &str,
        schema_version: u32,
        limit: usize,
    ) -> Vec<RecordedEvent> {
        let matching: Vec<&RecordedEvent> = self
            .events
            .iter()
            .filter(|e| e.event_type == event_type && e.schema_version == schema_version)
            .collect();
        if matching.len() <= limit {
            return matching.into_iter().cloned().collect();
        }
        let oldest = limit.div_ceil(2);
        let newest = limit - oldest;
        matching[..oldest]
            .iter()
            .chain(&matching[matching.len() - newest..])
            .map(|e| (*e).clone())
            .collect()
    }

    /// The index of the first event after `after`. Positions here are (n, n): it is the first n with
    /// (n, n) > after.
    fn first_index_after(after: Position) -> usize {
        let first_sequence = if after.commit > after.prepare {
            after.commit
        } else {
            after.commit.saturating_add(1)
        };
        usize::try_from(first_sequence.saturating_sub(1)).unwrap_or(usize::MAX)
    }

    pub(crate) fn count_after(&self, after: Position) -> u64 {
        self.events
            .len()
            .saturating_sub(Self::first_index_after(after)) as u64
    }

    pub(crate) fn read_all(&self, after: Position, limit: usize) -> Vec<RecordedEvent> {
        let start = Self::first_index_after(after);
        self.events
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take(limit)
            .cloned()
            .collect()
    }

    /// Up to `limit` streams after `after` by id, of `category` or of all.
    pub(crate) fn streams(
        &self,
        category: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<StreamSummary> {
        let mut ids: Vec<&StreamId> = self
            .streams
            .keys()
            .filter(|id| category.is_none_or(|c| id.category() == c))
            .filter(|id| after.is_none_or(|a| id.as_str() > a))
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .take(limit)
            .filter_map(|id| {
                let indexes = self.streams.get(id)?;
                let (first, last) = (indexes.first()?, indexes.last()?);
                Some(StreamSummary {
                    stream_id: id.to_string(),
                    version: indexes.len() as u64,
                    created_at: self.events[*first].recorded_at,
                    updated_at: self.events[*last].recorded_at,
                })
            })
            .collect()
    }

    /// The position after which the log holds its `n` newest events.
    pub(crate) fn before_newest(&self, n: usize) -> Position {
        match self.events.len().checked_sub(n + 1) {
            Some(index) => self.events[index].position,
            None => Position::START,
        }
    }
}
