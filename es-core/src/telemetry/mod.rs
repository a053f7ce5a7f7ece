//! What the framework tells an operator: metrics through the [`metrics`](https://docs.rs/metrics) facade, and
//! traces that follow a command through its events (W3C trace context in the events' metadata).
//!
//! The libraries record and never export: install a recorder in the application (for example
//! `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`), call [`describe_metrics`], and
//! every store, repository, projection runner, process runner and relay reports through it. The names are the
//! constants below; the guide's [operating chapter](crate::guide::operating) lists each with its labels and example
//! alerts.

mod metrics;
mod trace;

pub use self::metrics::{
    APPEND_SECONDS, APPENDED_EVENTS, APPENDS, CACHE_LOOKUPS, EXECUTE_SECONDS, EXECUTES,
    LOAD_SECONDS, LOADED_EVENTS, PROCESS_COMMANDS, PROCESS_TIMERS_DUE, PROCESS_TIMERS_FIRED,
    PROJECTION_BATCH_SECONDS, PROJECTION_CHECKPOINT, PROJECTION_DEAD_LETTERS, PROJECTION_EVENTS,
    PROJECTION_LAG_EVENTS, PROJECTION_LAG_SECONDS, PROJECTION_RETRIES, PROJECTION_STATE,
    PROJECTION_STATES, RELAY_BROKER_ERRORS, RELAY_PUBLISHED, describe_metrics,
    measure_append_multi, record_append, record_broker_error, record_published,
};
pub(crate) use self::metrics::{
    ProjectionGauges, record_batch, record_cache_lookup, record_execute, record_load,
    record_process_command, record_projection_status, record_retry, record_timer_fired,
    record_timers_due,
};
pub use self::trace::continue_trace;
#[cfg(feature = "opentelemetry")]
pub use self::trace::{current_traceparent, parse_traceparent};
pub(crate) use self::trace::{link_trace, stamp};
