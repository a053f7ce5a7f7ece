//! Test kit (feature `testing`): given/when/then for aggregates, and the conformance suite every event store
//! backend must pass.
//!
//! These helpers exist to fail tests, so they panic with a message that says what differed.
//!
//! ```
//! use es_core::testing::given;
//! use es_core::{Aggregate, DomainEvent};
//!
//! #[derive(Default, Clone, Debug)]
//! struct Door { open: bool }
//!
//! #[derive(Debug, PartialEq, DomainEvent)]
//! #[event(aggregate = Door)]
//! enum DoorEvent { Opened }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! #[error("already open")]
//! struct AlreadyOpen;
//!
//! impl Aggregate for Door {
//!     const CATEGORY: &'static str = "door";
//!     type Event = DoorEvent;
//!     type Command = ();
//!     type Error = AlreadyOpen;
//!     fn handle(&self, _: &()) -> Result<Vec<DoorEvent>, AlreadyOpen> {
//!         if self.open { Err(AlreadyOpen) } else { Ok(vec![DoorEvent::Opened]) }
//!     }
//!     fn apply(mut self, _: &DoorEvent) -> Self { self.open = true; self }
//! }
//!
//! given::<Door>([]).when(()).then([DoorEvent::Opened]);
//! given::<Door>([DoorEvent::Opened]).when(()).then_error(AlreadyOpen);
//! ```
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
mod process;
mod scenario;

pub use process::{ProcessGiven, ProcessWhen, process_given};
pub use scenario::{Given, Scenario, When, given};

/// Expands the store conformance suite into one `#[tokio::test]` per case, each on a fresh store made by
/// `$factory`: an expression callable with no arguments that returns a future of the store.
///
/// A backend's whole conformance test file:
/// ```
/// # mod wrapper {
/// es_core::store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
/// # }
/// ```
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features. Snapshot and checkpoint
/// stores have their own suites: [`snapshot_store_conformance_tests!`](crate::snapshot_store_conformance_tests),
/// [`checkpoint_store_conformance_tests!`](crate::checkpoint_store_conformance_tests).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@cases $factory;
            no_stream_creates_the_stream_at_version_one,
            exact_zero_behaves_as_no_stream,
            rejects_no_stream_when_the_stream_exists,
            rejects_stream_exists_when_the_stream_is_missing,
            stream_exists_appends_to_an_existing_stream,
            exact_version_appends_when_it_is_current,
            rejects_append_with_stale_expected_version,
            rejects_exact_version_on_a_missing_stream,
            any_appends_to_new_and_existing_streams,
            rejects_an_empty_batch_and_creates_nothing,
            a_failed_batch_writes_nothing,
            rejects_an_id_repeated_in_one_batch,
            retried_append_returns_the_original_result,
            retried_append_is_recognised_after_later_appends,
            retried_leading_part_of_a_batch_is_a_replay,
            retried_part_of_a_batch_with_any_is_a_replay,
            rejects_a_batch_mixing_stored_and_new_ids,
            rejects_an_event_id_stored_in_another_stream,
            rejects_a_retry_whose_expectation_does_not_fit,
            a_stale_append_reusing_ids_is_a_conflict,
            concurrent_retries_of_one_batch_write_it_once,
            streams_are_isolated,
            reads_a_stream_forward_from_a_version_with_a_limit,
            reads_a_stream_backward,
            reads_a_missing_stream_as_empty,
            read_all_returns_every_event_once_in_global_order,
            read_all_keeps_each_stream_in_version_order,
            events_round_trip_type_schema_version_payload_and_metadata,
            subscribe_all_catches_up_then_goes_live,
            subscribe_filtered_selects_by_category_and_type_and_moves_past_the_rest,
            subscribe_all_starts_after_the_given_position,
            racing_exact_appends_have_exactly_one_winner,
            concurrent_any_appends_to_one_stream_all_land_in_order,
            a_multi_append_writes_every_stream_or_none,
            a_retried_multi_append_is_a_replay,
            a_malformed_multi_append_is_refused,
            racing_multi_and_single_appends_never_write_in_part,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $crate::store_conformance_tests!(@module events $factory; $($case),*);
    };
    (@module $module:ident $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = ($factory)().await;
                $crate::testing::conformance::$module::$case(store).await;
            }
        )*
    };
}

/// Expands the snapshot store conformance suite into one `#[tokio::test]` per case; see
/// [`store_conformance_tests!`](crate::store_conformance_tests).
///
/// ```
/// # mod wrapper {
/// es_core::snapshot_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
/// # }
/// ```
#[macro_export]
macro_rules! snapshot_store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@module snapshots $factory;
            loads_nothing_for_a_stream_without_snapshot,
            saves_and_loads_a_snapshot,
            a_newer_snapshot_replaces_an_older_one,
            an_older_snapshot_never_replaces_a_newer_one,
            a_snapshot_of_another_schema_version_replaces_the_stored_one,
            snapshots_are_kept_per_stream_and_type,
            rejects_an_invalid_snapshot,
        );
    };
}

/// Expands the checkpoint store conformance suite into one `#[tokio::test]` per case; see
/// [`store_conformance_tests!`](crate::store_conformance_tests).
///
/// ```
/// # mod wrapper {
/// es_core::checkpoint_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
/// # }
/// ```
#[macro_export]
macro_rules! checkpoint_store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@module checkpoints $factory;
            a_reader_without_checkpoint_loads_none,
            saves_and_moves_a_checkpoint_by_compare_and_set,
            refuses_a_checkpoint_move_from_a_stale_position,
            refuses_to_create_a_checkpoint_that_exists,
            deletes_a_checkpoint,
            checkpoints_are_kept_per_name,
            only_one_of_racing_checkpoint_moves_wins,
        );
    };
}

/// Expands the control store conformance suite (requests, answers, reports, pauses, process listing) into one
/// `#[tokio::test]` per case; see [`store_conformance_tests!`](crate::store_conformance_tests).
///
/// ```
/// # mod wrapper {
/// es_core::control_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
/// # }
/// ```
#[macro_export]
macro_rules! control_store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@module control $factory;
            a_request_is_claimed_once_and_answered_once,
            requests_are_claimed_per_projection_in_order,
            an_expired_request_times_out_instead_of_being_claimed,
            withdraws_only_what_no_instance_took,
            racing_claims_take_each_request_once,
            reports_replace_per_instance_and_pauses_toggle,
            lists_process_instances_with_their_timers,
        );
    };
}

/// Expands the operator store conformance suite (streams, the newest events, migrations) into one
/// `#[tokio::test]` per case; see [`store_conformance_tests!`](crate::store_conformance_tests).
///
/// ```
/// # mod wrapper {
/// es_core::operator_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
/// # }
/// ```
#[macro_export]
macro_rules! operator_store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@module operator $factory;
            lists_streams_by_category_in_pages,
            before_newest_leaves_the_newest_events,
            a_migrated_store_is_current_and_has_a_location,
        );
    };
}

/// Expands the document store conformance suite into one `#[tokio::test]` per case; see
/// [`store_conformance_tests!`](crate::store_conformance_tests).
///
/// ```
/// # mod wrapper {
/// es_core::document_store_conformance_tests!(|| async { es_memory::InMemoryEventStore::new() });
/// # }
/// ```
#[macro_export]
macro_rules! document_store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@module documents $factory;
            commits_documents_with_the_checkpoint,
            replaces_and_deletes_documents,
            lists_documents_by_field_in_pages,
            reset_empties_one_projection,
            a_switch_makes_a_version_live_and_retires_the_others,
        );
    };
}

/// Expands the consistency race suite (conditional and multi-stream appends raced the ways other stores shipped
/// races) into one `#[tokio::test]` per case, each running `$rounds` rounds on a fresh store from `$factory`. Run it
/// against your own database: `DATABASE_URL=... cargo test -p tests --test consistency_races`.
///
/// ```
/// # mod wrapper {
/// es_core::consistency_race_tests!(|| async { es_memory::InMemoryEventStore::new() }, 5);
/// # }
/// ```
#[macro_export]
macro_rules! consistency_race_tests {
    ($factory:expr, $rounds:expr) => {
        $crate::consistency_race_tests!(@cases $factory, $rounds;
            barriered_racers_have_one_winner,
            staggered_racers_have_one_winner,
            a_commit_after_the_read_fails_the_append,
            racers_on_distinct_streams_sharing_a_tag_have_one_winner,
            racers_sharing_only_a_type_have_one_winner,
            one_boundary_read_twice_is_no_conflict,
            multi_stream_appends_race_single_appends,
        );
    };
    (@cases $factory:expr, $rounds:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = ($factory)().await;
                $crate::testing::conformance::consistency::$case(store, $rounds).await;
            }
        )*
    };
}
