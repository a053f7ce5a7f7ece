//! The metrics every component records, through the [`metrics`](https://docs.rs/metrics) facade: nothing is
//! exported until the application installs a recorder (for example `metrics-exporter-prometheus`); without one,
//! recording only builds the label strings and hands them to a no-op recorder.
//!
//! Names and labels follow the Prometheus conventions (`_total` counters, `_seconds` durations). Labels are bounded
//! by the code, never by the data: a category, a projection, a process manager, a relay, an outcome, never a stream
//! id or an event id.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::store::{AppendResult, MultiAppend, StoreError};

/// Appends (batches) by category and outcome: `ok`, `replayed` (an idempotent retry that wrote nothing),
/// `conflict`, `condition` (a multi-stream append's condition failed), `duplicate`, `invalid` (refused input) or
/// `failed` (the backend). Each stream a multi-stream append writes counts as one append of its category.
pub const APPENDS: &str = "es_appends_total";
/// Events written by appends, by category.
pub const APPENDED_EVENTS: &str = "es_appended_events_total";
/// Time an append took, by category (histogram).
pub const APPEND_SECONDS: &str = "es_append_duration_seconds";
/// Commands executed by category and outcome: `ok`, `redecided` (appended after losing a race and deciding
/// again), `replayed` (ran before), `rejected` (the aggregate refused), `conflict` (lost every race), `failed`.
pub const EXECUTES: &str = "es_executes_total";
/// Time `execute` took, decision, retries and append included, by category (histogram).
pub const EXECUTE_SECONDS: &str = "es_execute_duration_seconds";
/// Commands that found the aggregate's state in the repository's cache (`result` = `hit`) or loaded it (`miss`).
pub const CACHE_LOOKUPS: &str = "es_execute_cache_lookups_total";
/// Time a load took (snapshot read and fold), by category (histogram).
pub const LOAD_SECONDS: &str = "es_load_duration_seconds";
/// Events folded by loads, by category.
pub const LOADED_EVENTS: &str = "es_load_events_folded_total";
/// Events a projection handled, by projection.
pub const PROJECTION_EVENTS: &str = "es_projection_events_total";
/// Time a projection batch took, handler and checkpoint included, by projection (histogram).
pub const PROJECTION_BATCH_SECONDS: &str = "es_projection_batch_duration_seconds";
/// Retries of a failing event, by projection.
pub const PROJECTION_RETRIES: &str = "es_projection_retries_total";
/// Events committed after the projection's checkpoint (held back ones included), by projection (gauge).
pub const PROJECTION_LAG_EVENTS: &str = "es_projection_lag_events";
/// Age of the oldest event the projection has not handled yet, 0 when caught up, by projection (gauge).
pub const PROJECTION_LAG_SECONDS: &str = "es_projection_lag_seconds";
/// The global sequence number (prepare half) of the projection's checkpoint, by projection (gauge).
pub const PROJECTION_CHECKPOINT: &str = "es_projection_checkpoint_position";
/// 1 for the projection's current state (`running`, `standby`, `lost`, `stopped`, `failed`), 0 for the others
/// (gauge).
pub const PROJECTION_STATE: &str = "es_projection_state";
/// Dead letters parked by the projection and not yet redriven, by projection (gauge).
pub const PROJECTION_DEAD_LETTERS: &str = "es_projection_dead_letters";
/// Commands a process manager routed, by process and outcome: `ok`, `rejected`, `failed`.
pub const PROCESS_COMMANDS: &str = "es_process_commands_total";
/// Timers found due at a poll, by process (gauge).
pub const PROCESS_TIMERS_DUE: &str = "es_process_timers_due";
/// Timers fired, by process.
pub const PROCESS_TIMERS_FIRED: &str = "es_process_timers_fired_total";
/// Integration events published and acknowledged by the broker, by relay.
pub const RELAY_PUBLISHED: &str = "es_relay_published_total";
/// Failed publishes (the broker unreachable or refusing), by relay.
pub const RELAY_BROKER_ERRORS: &str = "es_relay_broker_errors_total";

/// The states [`PROJECTION_STATE`] labels. `gone` is set only by `es serve` (from the control plane), for a projection
/// none of whose instances reports any more: its process died or was cut off.
pub const PROJECTION_STATES: [&str; 8] = [
    "starting", "running", "paused", "standby", "lost", "stopped", "failed", "gone",
];

/// Registers the help text of every metric above with the installed recorder, so an exporter shows it. Call it
/// once, after installing the recorder.
///
/// ```
/// es_core::telemetry::describe_metrics();
/// ```
pub fn describe_metrics() {
    describe_counter!(APPENDS, "Appends (batches) by category and outcome");
    describe_counter!(APPENDED_EVENTS, "Events written by appends");
    describe_histogram!(
        APPEND_SECONDS,
        ::metrics::Unit::Seconds,
        "Time an append took"
    );
    describe_counter!(EXECUTES, "Commands executed by category and outcome");
    describe_histogram!(
        EXECUTE_SECONDS,
        ::metrics::Unit::Seconds,
        "Time execute took, retries included"
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Aggregate cache lookups by execute (hit or miss)"
    );
    describe_histogram!(LOAD_SECONDS, ::metrics::Unit::Seconds, "Time a load took");
    describe_counter!(LOADED_EVENTS, "Events folded by loads");
    describe_counter!(PROJECTION_EVENTS, "Events handled by the projection");
    describe_histogram!(
        PROJECTION_BATCH_SECONDS,
        ::metrics::Unit::Seconds,
        "Time a projection batch took"
    );
    describe_counter!(PROJECTION_RETRIES, "Retries of failing events");
    describe_gauge!(
        PROJECTION_LAG_EVENTS,
        "Events committed after the checkpoint"
    );
    describe_gauge!(
        PROJECTION_LAG_SECONDS,
        ::metrics::Unit::Seconds,
        "Age of the oldest unhandled event"
    );
    describe_gauge!(
        PROJECTION_CHECKPOINT,
        "Global sequence number of the checkpoint"
    );
    describe_gauge!(PROJECTION_STATE, "1 for the projection's current state");
    describe_gauge!(PROJECTION_DEAD_LETTERS, "Dead letters not yet redriven");
    describe_counter!(PROCESS_COMMANDS, "Commands routed by the process manager");
    describe_gauge!(PROCESS_TIMERS_DUE, "Timers due at the last poll");
    describe_counter!(PROCESS_TIMERS_FIRED, "Timers fired");
    describe_counter!(
        RELAY_PUBLISHED,
        "Integration events published and acknowledged"
    );
    describe_counter!(RELAY_BROKER_ERRORS, "Failed publishes to the broker");
}

/// Records one append: for backends, called by every [`EventStore::append`](crate::EventStore::append).
pub fn record_append(
    category: &str,
    events: usize,
    result: &Result<AppendResult, StoreError>,
    took: Duration,
) {
    record_outcome(category, events, result.as_ref(), took);
}

/// Runs one multi-stream append (`write`) and records each stream it writes as an append of its category, with
/// the whole call's outcome and duration: for backends, around every
/// [`EventStore::append_multi`](crate::EventStore::append_multi).
///
/// ```
/// use es_core::store::MultiAppend;
/// use es_core::{ExpectedVersion, NewEvent, StoreError, StreamId};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let append = MultiAppend::new()
///     .append(StreamId::new("account-1")?, ExpectedVersion::Any, vec![NewEvent::new("Opened", 1, serde_json::json!({}))]);
/// // A backend's `append_multi` wraps its own write; the write's outcome is returned as it is.
/// let written = es_core::telemetry::measure_append_multi(append, |append| async move {
///     let streams = append.appends().len();
///     Err(StoreError::Backend { operation: "append_multi", source: format!("{streams} streams: the disk is full").into() })
/// })
/// .await;
/// assert!(matches!(written, Err(StoreError::Backend { .. })));
/// # Ok(()) }
/// ```
pub async fn measure_append_multi<F>(
    append: MultiAppend,
    write: impl FnOnce(MultiAppend) -> F,
) -> Result<Vec<AppendResult>, StoreError>
where
    F: std::future::Future<Output = Result<Vec<AppendResult>, StoreError>>,
{
    let written: Vec<(String, usize)> = append
        .appends()
        .iter()
        .map(|a| (a.stream.category().to_owned(), a.events.len()))
        .collect();
    let started = std::time::Instant::now();
    let result = write(append).await;
    let took = started.elapsed();
    for (index, (category, events)) in written.iter().enumerate() {
        match &result {
            Ok(results) => {
                if let Some(appended) = results.get(index) {
                    record_outcome(category, *events, Ok(appended), took);
                }
            }
            Err(error) => record_outcome(category, *events, Err(error), took),
        }
    }
    result
}

fn record_outcome(
    category: &str,
    events: usize,
    result: Result<&AppendResult, &StoreError>,
    took: Duration,
) {
    let category = category.to_owned();
    let outcome = match result {
        Ok(append) if append.replayed => "replayed",
        Ok(_) => "ok",
        Err(StoreError::Conflict { .. } | StoreError::Conflicts { .. }) => "conflict",
        Err(StoreError::ConditionFailed { .. }) => "condition",
        Err(StoreError::DuplicateEventId { .. }) => "duplicate",
        Err(
            StoreError::EmptyAppend { .. }
            | StoreError::InvalidEvent { .. }
            | StoreError::NothingToAppend
            | StoreError::StreamRepeated { .. },
        ) => "invalid",
        Err(_) => "failed",
    };
    counter!(APPENDS, "category" => category.clone(), "outcome" => outcome).increment(1);
    if matches!(result, Ok(append) if !append.replayed) {
        counter!(APPENDED_EVENTS, "category" => category.clone()).increment(events as u64);
    }
    histogram!(APPEND_SECONDS, "category" => category).record(took.as_secs_f64());
}

/// Records one `execute` of the repository.
pub(crate) fn record_execute(category: &'static str, outcome: &'static str, took: Duration) {
    counter!(EXECUTES, "category" => category, "outcome" => outcome).increment(1);
    histogram!(EXECUTE_SECONDS, "category" => category).record(took.as_secs_f64());
}

/// Records whether `execute` found the state in the cache.
pub(crate) fn record_cache_lookup(category: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!(CACHE_LOOKUPS, "category" => category, "result" => result).increment(1);
}

/// Records one load.
pub(crate) fn record_load(category: &'static str, events: u64, took: Duration) {
    counter!(LOADED_EVENTS, "category" => category).increment(events);
    histogram!(LOAD_SECONDS, "category" => category).record(took.as_secs_f64());
}

/// Records one applied projection batch.
pub(crate) fn record_batch(projection: &str, events: usize, took: Duration) {
    let projection = projection.to_owned();
    counter!(PROJECTION_EVENTS, "projection" => projection.clone()).increment(events as u64);
    histogram!(PROJECTION_BATCH_SECONDS, "projection" => projection).record(took.as_secs_f64());
}

/// Records one retry of a failing event.
pub(crate) fn record_retry(projection: &str) {
    counter!(PROJECTION_RETRIES, "projection" => projection.to_owned()).increment(1);
}

/// A projection's status as its gauges show it.
pub(crate) struct ProjectionGauges<'a> {
    pub(crate) name: &'a str,
    pub(crate) lag_events: u64,
    pub(crate) lag_seconds: f64,
    pub(crate) checkpoint: u64,
    pub(crate) dead_letters: usize,
    /// The state's label: one of [`PROJECTION_STATES`].
    pub(crate) state: &'a str,
}

/// Publishes a projection's status as gauges.
pub(crate) fn record_projection_status(status: &ProjectionGauges<'_>) {
    let projection = status.name.to_owned();
    gauge!(PROJECTION_LAG_EVENTS, "projection" => projection.clone()).set(status.lag_events as f64);
    gauge!(PROJECTION_LAG_SECONDS, "projection" => projection.clone()).set(status.lag_seconds);
    gauge!(PROJECTION_CHECKPOINT, "projection" => projection.clone()).set(status.checkpoint as f64);
    gauge!(PROJECTION_DEAD_LETTERS, "projection" => projection.clone())
        .set(status.dead_letters as f64);
    for state in PROJECTION_STATES {
        let value = if state == status.state { 1.0 } else { 0.0 };
        gauge!(PROJECTION_STATE, "projection" => projection.clone(), "state" => state).set(value);
    }
}

/// Records one command a process manager routed.
pub(crate) fn record_process_command(process: &str, outcome: &'static str) {
    counter!(PROCESS_COMMANDS, "process" => process.to_owned(), "outcome" => outcome).increment(1);
}

/// Records how many timers a poll found due.
pub(crate) fn record_timers_due(process: &str, due: usize) {
    gauge!(PROCESS_TIMERS_DUE, "process" => process.to_owned()).set(due as f64);
}

/// Records one fired timer.
pub(crate) fn record_timer_fired(process: &str) {
    counter!(PROCESS_TIMERS_FIRED, "process" => process.to_owned()).increment(1);
}

/// Records an integration event a relay published and the broker acknowledged: for the relay.
pub fn record_published(relay: &str) {
    counter!(RELAY_PUBLISHED, "relay" => relay.to_owned()).increment(1);
}

/// Records a failed publish (the broker unreachable, refusing, or not acknowledging in time): for the relay.
pub fn record_broker_error(relay: &str) {
    counter!(RELAY_BROKER_ERRORS, "relay" => relay.to_owned()).increment(1);
}
