//! The lag chart's data: every projection's lag sampled every second for the last 10 minutes, also published as
//! Prometheus gauges on `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use es_core::telemetry::{
    PROJECTION_CHECKPOINT, PROJECTION_DEAD_LETTERS, PROJECTION_LAG_EVENTS, PROJECTION_LAG_SECONDS,
    PROJECTION_STATE, PROJECTION_STATES,
};
use metrics::gauge;
use serde::Serialize;

use crate::serve::Shared;
use es_core::control::OperatorStore;

const EVERY: Duration = Duration::from_secs(1);
const KEEP: usize = 600;

/// One sample.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Sample {
    /// Milliseconds since the epoch.
    pub(crate) at: i64,
    pub(crate) lag_events: u64,
    pub(crate) lag_seconds: f64,
}

/// Samples per projection.
#[derive(Debug, Default)]
pub(crate) struct History(Mutex<BTreeMap<String, VecDeque<Sample>>>);

impl History {
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Vec<Sample>> {
        let history = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        history
            .iter()
            .map(|(name, samples)| (name.clone(), samples.iter().copied().collect()))
            .collect()
    }

    fn push(&self, name: &str, sample: Sample) {
        let mut history = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = history.entry(name.to_owned()).or_default();
        samples.push_back(sample);
        while samples.len() > KEEP {
            samples.pop_front();
        }
    }
}

/// Samples until the process ends; a failed read is logged and tried again at the next tick.
pub(crate) async fn sample<S: OperatorStore>(shared: Arc<Shared<S>>) {
    let mut ticks = tokio::time::interval(EVERY);
    loop {
        ticks.tick().await;
        let projections = match shared.app.operator.projections().await {
            Ok(projections) => projections,
            Err(error) => {
                eprintln!("cannot sample the projections: {error}");
                continue;
            }
        };
        let at = Utc::now().timestamp_millis();
        for p in projections {
            shared.history.push(
                &p.name,
                Sample {
                    at,
                    lag_events: p.lag_events,
                    lag_seconds: p.lag_seconds,
                },
            );
            let name = p.name.clone();
            gauge!(PROJECTION_LAG_EVENTS, "projection" => name.clone()).set(p.lag_events as f64);
            gauge!(PROJECTION_LAG_SECONDS, "projection" => name.clone()).set(p.lag_seconds);
            let checkpoint = p.checkpoint.map_or(0, |c| c.prepare);
            gauge!(PROJECTION_CHECKPOINT, "projection" => name.clone()).set(checkpoint as f64);
            gauge!(PROJECTION_DEAD_LETTERS, "projection" => name.clone())
                .set(p.dead_letters as f64);
            for state in PROJECTION_STATES {
                let value = if state == p.state.label() { 1.0 } else { 0.0 };
                gauge!(PROJECTION_STATE, "projection" => name.clone(), "state" => state).set(value);
            }
        }
    }
}
