//! The read side of the [`EventStore`] contract on PostgreSQL, and the feed queries the subscriptions page through.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use es_core::backend::{FoldRead, Visit};
use es_core::projection::HeldBack;
use es_core::store::{
    AppendResult, Direction, EventStream, FeedBatch, FeedFilter, FeedStream, MultiAppend, Query,
    QueryRead,
};
use es_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError, StreamId,
    StreamRead,
};
use tracing::Instrument;

use super::{Inner, PgEventStore};
use crate::error::backend;
use crate::rows::{bind_half, recorded_event};
use crate::subscription;

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let started = std::time::Instant::now();
        let count = events.len();
        let span = tracing::debug_span!("append", %stream, ?expected, events = count);
        let result = self
            .append_checked(stream, expected, events)
            .instrument(span)
            .await;
        es_core::telemetry::record_append(stream.category(), count, &result, started.elapsed());
        result
    }

    async fn append_multi(&self, append: MultiAppend) -> Result<Vec<AppendResult>, StoreError> {
        es_core::telemetry::measure_append_multi(append, |append| {
            crate::multi::append_multi(self, append)
        })
        .await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Option<Position>,
    ) -> Result<QueryRead, StoreError> {
        crate::query::read_query(self, query, after).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (sql, from) = match read.direction {
            Direction::Forward => (
                &self.inner.sql.events.read_forward,
                read.from.map_or(1, |v| v.get()),
            ),
            Direction::Backward => (
                &self.inner.sql.events.read_backward,
                read.from.map_or(u64::MAX, |v| v.get()),
            ),
        };
        let rows = crate::error::retrying(&self.inner.pool, || {
            sqlx::query(sql)
                .bind(stream.as_str())
                .bind(bind_half(from))
                .bind(bind_half(read.limit as u64))
                .fetch_all(&self.inner.pool)
        })
        .await
        .map_err(backend("read_stream"))?;
        rows.iter()
            .map(|row| recorded_event(row, Some(stream)))
            .collect()
    }

    async fn fold_stream(
        &self,
        stream: &StreamId,
        read: FoldRead,
        visit: &mut Visit<'_>,
    ) -> Result<usize, StoreError> {
        let sql = match read.recorded_at {
            true => &self.inner.sql.events.fold_stream_timed,
            false => &self.inner.sql.events.fold_stream,
        };
        // Versions are dense, so a limit is a version range (no LIMIT node over the sort).
        let end = read.from.get().saturating_add(read.limit as u64);
        let rows = crate::error::retrying(&self.inner.pool, || {
            sqlx::query(sql)
                .bind(stream.as_str())
                .bind(bind_half(read.from.get()))
                .bind(bind_half(end))
                .fetch_all(&self.inner.pool)
        })
        .await
        .map_err(backend("fold_stream"))?;
        crate::rows::visit_rows(&rows, stream, visit)
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all(&self.inner, after, limit)
            .instrument(tracing::debug_span!("read_all", %after, limit))
            .await
    }

    fn subscribe_all(&self, after: Position) -> EventStream {
        subscription::subscribe(Arc::clone(&self.inner), after)
    }

    fn subscribe_filtered(&self, after: Position, filter: FeedFilter) -> FeedStream {
        subscription::subscribe_filtered(Arc::clone(&self.inner), after, filter)
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let row: Option<(i64, i64)> = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.events.head).fetch_optional(&self.inner.pool)
        })
        .await
        .map_err(backend("head"))?;
        Ok(row.map(|(tx, pos)| crate::rows::position(tx, pos)))
    }

    async fn contains_event(
        &self,
        stream: &StreamId,
        event_id: EventId,
    ) -> Result<bool, StoreError> {
        crate::error::retrying(&self.inner.pool, || {
            sqlx::query_scalar(&self.inner.sql.events.contains_event)
                .bind(event_id.as_uuid())
                .bind(stream.as_str())
                .fetch_one(&self.inner.pool)
        })
        .await
        .map_err(backend("contains_event"))
    }

    async fn held_back(&self) -> Result<Option<HeldBack>, StoreError> {
        type Row = (
            i64,
            Option<i32>,
            Option<f64>,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.events.held_back)
                .bind(bind_half(self.inner.count_cap))
                .fetch_optional(&self.inner.pool)
        })
        .await
        .map_err(backend("held_back"))?;
        Ok(
            row.map(|(events, pid, age, state, application_name)| HeldBack {
                events: u64::try_from(events).unwrap_or_default(),
                pid,
                age: age.and_then(|secs| Duration::try_from_secs_f64(secs).ok()),
                state,
                application_name: application_name.filter(|name| !name.is_empty()),
            }),
        )
    }

    /// Exact up to [`PgEventStoreBuilder::count_cap`](crate::PgEventStoreBuilder::count_cap) events; past it, estimated from the head's position.
    async fn count_after(&self, after: Position) -> Result<u64, StoreError> {
        let cap = self.inner.count_cap;
        let count: i64 = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_scalar(&self.inner.sql.events.count_after)
                .bind(bind_half(after.commit))
                .bind(bind_half(after.prepare))
                .bind(bind_half(cap))
                .fetch_one(&self.inner.pool)
        })
        .await
        .map_err(backend("count_after"))?;
        let count = u64::try_from(count).unwrap_or_default();
        if count < cap {
            return Ok(count);
        }
        let head = self.head().await?;
        Ok(head.map_or(count, |head| {
            head.prepare.saturating_sub(after.prepare).max(count)
        }))
    }
}

/// Reads up to `limit` events after `after` in the gap-free global order.
pub(crate) async fn read_all(
    inner: &Inner,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = crate::error::retrying(&inner.feed, || {
        sqlx::query(&inner.sql.events.read_all)
            .bind(bind_half(after.commit))
            .bind(bind_half(after.prepare))
            .bind(bind_half(limit as u64))
            .fetch_all(&inner.feed)
    })
    .await
    .map_err(backend("read_all"))?;
    crate::rows::feed_page(&rows)
}

pub(super) fn bind_partition(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One filtered feed page after `after` (see `read_filtered`): `None` when nothing new is visible.
pub(crate) async fn read_filtered(
    inner: &Inner,
    after: Position,
    limit: usize,
    filter: &FeedFilter,
) -> Result<Option<FeedBatch>, StoreError> {
    let list = |items: &[String]| (!items.is_empty()).then(|| items.to_vec());
    let rows = crate::error::retrying(&inner.feed, || {
        sqlx::query(&inner.sql.events.read_filtered)
            .bind(bind_half(after.commit))
            .bind(bind_half(after.prepare))
            .bind(bind_half(limit as u64))
            .bind(list(filter.categories()))
            .bind(list(filter.event_types()))
            .bind(filter.partition_of().map(|(p, _)| bind_partition(p)))
            .bind(filter.partition_of().map(|(_, of)| bind_partition(of)))
            .fetch_all(&inner.feed)
    })
    .await
    .map_err(backend("read_filtered"))?;
    crate::rows::filtered_page(&rows)
}
