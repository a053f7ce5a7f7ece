//! A projection's status read from its task and the store, and the runner's periodic publication of it as gauges.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::projection::ProjectionStatus;
use crate::projection::runner::TaskStatus;
use crate::store::{EventStore, Position, StoreError};
use crate::telemetry;

/// Projection `name`'s status: what its task published, with the head, the lag counted in the store and the
/// events held back behind an open transaction.
pub(super) async fn status_of(
    store: &dyn EventStore,
    name: &str,
    now: TaskStatus,
) -> Result<ProjectionStatus, StoreError> {
    let head = store.head().await?;
    let mut lag_events = match head {
        None => 0,
        Some(_) => {
            store
                .count_after(now.checkpoint.unwrap_or(Position::START))
                .await?
        }
    };
    let held_back = store.held_back().await?;
    lag_events += held_back.as_ref().map_or(0, |held| held.events);
    Ok(ProjectionStatus {
        name: name.to_owned(),
        state: now.state,
        checkpoint: now.checkpoint,
        head,
        lag_events,
        held_back,
        since_last_event: now.last_event_at.map(|at| at.elapsed()),
        dead_letters: now.dead_letters,
    })
}

/// Age in seconds of the oldest event after `checkpoint`, 0 when there is none.
pub(crate) async fn lag_seconds(
    store: &dyn EventStore,
    checkpoint: Option<Position>,
) -> Result<f64, StoreError> {
    let next = store
        .read_all(checkpoint.unwrap_or(Position::START), 1)
        .await?;
    Ok(next.first().map_or(0.0, |event| {
        (Utc::now() - event.recorded_at).num_milliseconds().max(0) as f64 / 1000.0
    }))
}

/// Publishes every projection's status as gauges every `interval` until shutdown. A failed read is logged and
/// tried again at the next tick.
pub(super) async fn sample_metrics(
    store: Arc<dyn EventStore>,
    projections: Vec<(String, watch::Receiver<TaskStatus>)>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        for (name, status) in &projections {
            let now = status.borrow().clone();
            let sampled = match status_of(store.as_ref(), name, now).await {
                Ok(status) if status.lag_events == 0 => Ok((status, 0.0)),
                Ok(status) => lag_seconds(store.as_ref(), status.checkpoint)
                    .await
                    .map(|seconds| (status, seconds)),
                Err(error) => Err(error),
            };
            match sampled {
                Ok((status, seconds)) => {
                    telemetry::record_projection_status(&telemetry::ProjectionGauges {
                        name: &status.name,
                        lag_events: status.lag_events,
                        lag_seconds: seconds,
                        checkpoint: status.checkpoint.map_or(0, |p| p.prepare),
                        dead_letters: status.dead_letters,
                        state: status.state.label(),
                    });
                }
                Err(error) => {
                    tracing::debug!(projection = %name, %error, "cannot sample the projection's metrics")
                }
            }
        }
    }
}
