//! The [`EventStore`] contract as executable cases; run by
//! [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! Grouped by topic: expected versions, retries (idempotent appends), reads, subscriptions, races.

mod expectations;
mod multi;
mod races;
mod reads;
mod retries;
mod subscriptions;

pub use expectations::{
    any_appends_to_new_and_existing_streams, exact_version_appends_when_it_is_current,
    exact_zero_behaves_as_no_stream, no_stream_creates_the_stream_at_version_one,
    rejects_an_empty_batch_and_creates_nothing, rejects_append_with_stale_expected_version,
    rejects_exact_version_on_a_missing_stream, rejects_no_stream_when_the_stream_exists,
    rejects_stream_exists_when_the_stream_is_missing, stream_exists_appends_to_an_existing_stream,
};
pub use multi::{
    a_malformed_multi_append_is_refused, a_multi_append_writes_every_stream_or_none,
    a_retried_multi_append_is_a_replay, racing_multi_and_single_appends_never_write_in_part,
};
pub use races::{
    concurrent_any_appends_to_one_stream_all_land_in_order,
    racing_exact_appends_have_exactly_one_winner,
};
pub use reads::{
    events_round_trip_type_schema_version_payload_and_metadata,
    read_all_keeps_each_stream_in_version_order, read_all_returns_every_event_once_in_global_order,
    reads_a_missing_stream_as_empty, reads_a_stream_backward,
    reads_a_stream_forward_from_a_version_with_a_limit, streams_are_isolated,
};
pub use retries::{
    a_failed_batch_writes_nothing, a_stale_append_reusing_ids_is_a_conflict,
    concurrent_retries_of_one_batch_write_it_once, rejects_a_batch_mixing_stored_and_new_ids,
    rejects_a_retry_whose_expectation_does_not_fit, rejects_an_event_id_stored_in_another_stream,
    rejects_an_id_repeated_in_one_batch, retried_append_is_recognised_after_later_appends,
    retried_append_returns_the_original_result, retried_leading_part_of_a_batch_is_a_replay,
    retried_part_of_a_batch_with_any_is_a_replay,
};
pub use subscriptions::{
    subscribe_all_catches_up_then_goes_live, subscribe_all_starts_after_the_given_position,
    subscribe_filtered_selects_by_category_and_type_and_moves_past_the_rest,
};

use std::time::Duration;

use serde_json::json;

use crate::store::{
    AppendResult, DuplicateReason, EventId, EventStore, ExpectedVersion, NewEvent, Position,
    RecordedEvent, StoreError, StreamId, StreamRead, Version,
};

/// How long a subscription case waits for an event before it fails (a hang guard, not a performance check).
pub(super) const PATIENCE: Duration = Duration::from_secs(20);

pub(super) fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid test stream id")
}

pub(super) fn event(n: u64) -> NewEvent {
    NewEvent::new("Tested", 1, json!({ "n": n }))
}

pub(super) fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

pub(super) fn v(n: u64) -> Version {
    Version::new(n)
}

pub(super) async fn append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    batch: Vec<NewEvent>,
) -> AppendResult {
    store
        .append(stream, expected, batch)
        .await
        .unwrap_or_else(|error| panic!("append to `{stream}` with {expected} failed: {error}"))
}

pub(super) async fn all<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, usize::MAX)
        .await
        .expect("read_all")
}

/// `read_all` once it shows `count` events. A backend may show a committed event to `read_all` only once every
/// transaction that could still commit before it has ended (PostgreSQL's gap-free horizon), so right after an
/// append the global order can lag; it must catch up, and never show more than was written.
pub(super) async fn all_settled<S: EventStore>(store: &S, count: usize) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = all(store).await;
        assert!(
            events.len() <= count,
            "read_all shows {} events, {count} were written",
            events.len()
        );
        if events.len() == count {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "read_all still shows {} of {count} events after {PATIENCE:?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) async fn versions<S: EventStore>(store: &S, stream: &StreamId) -> Vec<u64> {
    store
        .read_stream(stream, StreamRead::forward())
        .await
        .expect("read_stream")
        .iter()
        .map(|e| e.version.get())
        .collect()
}

#[track_caller]
pub(super) fn assert_conflict(
    result: Result<AppendResult, StoreError>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: Option<Version>,
) {
    match result {
        Err(StoreError::Conflict {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(&s, stream, "conflict names the wrong stream");
            assert_eq!(e, expected, "conflict names the wrong expected version");
            assert_eq!(a, actual, "conflict names the wrong actual version");
        }
        other => panic!(
            "expected a conflict on `{stream}` ({expected}, actual {actual:?}), got {other:?}"
        ),
    }
}

#[track_caller]
pub(super) fn assert_duplicate(
    result: Result<AppendResult, StoreError>,
    id: EventId,
    reason: DuplicateReason,
) {
    match result {
        Err(StoreError::DuplicateEventId {
            event_id,
            reason: r,
            ..
        }) => {
            assert_eq!(event_id, id, "duplicate error names the wrong event id");
            assert_eq!(r, reason, "duplicate error gives the wrong reason");
        }
        other => panic!("expected DuplicateEventId({id}, {reason}), got {other:?}"),
    }
}
