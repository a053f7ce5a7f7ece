//! What recording metrics and traces costs: the same work with and without a Prometheus recorder, and with and
//! without an OpenTelemetry tracing layer, interleaved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::commands::execute;
use crate::projections::{counter_catch_up, fill};
use crate::report::Figure;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A recorder that records into Prometheus while switched on and is a no-op (as if none were installed) while
/// off, so both can be measured in one process, turn by turn.
struct Switched {
    on: Arc<AtomicBool>,
    inner: PrometheusRecorder,
}

impl Recorder for Switched {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        match self.on.load(Ordering::Relaxed) {
            true => self.inner.register_counter(key, metadata),
            false => Counter::noop(),
        }
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        match self.on.load(Ordering::Relaxed) {
            true => self.inner.register_gauge(key, metadata),
            false => Gauge::noop(),
        }
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match self.on.load(Ordering::Relaxed) {
            true => self.inner.register_histogram(key, metadata),
            false => Histogram::noop(),
        }
    }
}

/// Installs the switched recorder (off); returns its switch and the Prometheus handle.
fn install() -> Result<(Arc<AtomicBool>, PrometheusHandle), Error> {
    let inner = PrometheusBuilder::new().build_recorder();
    let handle = inner.handle();
    let on = Arc::new(AtomicBool::new(false));
    metrics::set_global_recorder(Switched {
        on: Arc::clone(&on),
        inner,
    })
    .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    es_core::telemetry::describe_metrics();
    Ok((on, handle))
}

/// The best of `rounds` runs of `work` with metrics off and on, interleaved (off, on, off, on, ...).
async fn off_and_on<F, Fut>(
    on: &AtomicBool,
    rounds: usize,
    mut work: F,
) -> Result<(f64, f64), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<f64, Error>>,
{
    let (mut off_best, mut on_best) = (0.0_f64, 0.0_f64);
    for _ in 0..rounds {
        on.store(false, Ordering::Relaxed);
        off_best = off_best.max(work().await?);
        on.store(true, Ordering::Relaxed);
        on_best = on_best.max(work().await?);
    }
    on.store(false, Ordering::Relaxed);
    Ok((off_best, on_best))
}

/// Installs a tracing subscriber whose OpenTelemetry layer (spans built by the SDK, sampled, not exported) only
/// sees spans and events at INFO and above, and only while switched on; returns the switch.
fn install_tracing() -> Result<Arc<AtomicBool>, Error> {
    use opentelemetry::trace::TracerProvider;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    let on = Arc::new(AtomicBool::new(false));
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let switch = Arc::clone(&on);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("es-bench"))
        .with_filter(tracing_subscriber::filter::filter_fn(move |metadata| {
            switch.load(Ordering::Relaxed) && *metadata.level() <= tracing::Level::INFO
        }));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .map_err(|e| format!("cannot install the tracing subscriber: {e}"))?;
    Ok(on)
}

async fn execute_rate(commands: usize) -> Result<f64, Error> {
    let store = es_memory::InMemoryEventStore::new();
    Ok(execute(&store, "metered", commands, 1, 1).await?.rate)
}

async fn catch_up_rate(events: usize) -> Result<f64, Error> {
    let store = es_memory::InMemoryEventStore::new();
    fill(&store, events).await?;
    counter_catch_up(&store, events, events).await
}

/// `execute` and projection catch-up on the in-memory store (where the recording is the largest share of the
/// work), without and with a Prometheus recorder, then without and with OpenTelemetry spans.
pub(crate) async fn overhead(commands: usize, events: usize) -> Result<Vec<Figure>, Error> {
    let (on, handle) = install()?;
    let (execute_off, execute_on) = off_and_on(&on, 3, || execute_rate(commands)).await?;
    let (catch_up_off, catch_up_on) = off_and_on(&on, 3, || catch_up_rate(events)).await?;
    let traced = install_tracing()?;
    let (untraced_execute, traced_execute) =
        off_and_on(&traced, 3, || execute_rate(commands)).await?;
    let (untraced_catch_up, traced_catch_up) =
        off_and_on(&traced, 3, || catch_up_rate(events)).await?;
    let series = handle
        .render()
        .lines()
        .filter(|line| line.starts_with("es_"))
        .count();
    if series == 0 {
        return Err("the Prometheus recorder rendered no es_ series".into());
    }
    Ok(vec![
        Figure::new(
            "memory: execute, sequential, Prometheus recorder installed",
            execute_on,
            "commands/s",
        )
        .against("the same without a recorder", execute_off)
        .note("best of 3 interleaved runs each"),
        Figure::new(
            "memory: projection catch-up, Prometheus recorder installed",
            catch_up_on,
            "events/s",
        )
        .against("the same without a recorder", catch_up_off)
        .note(format!("{events} events; {series} es_ series rendered")),
        Figure::new(
            "memory: execute, sequential, OpenTelemetry spans",
            traced_execute,
            "commands/s",
        )
        .against("the same without the tracing layer", untraced_execute)
        .note("INFO and above; SDK spans sampled, not exported; best of 3 interleaved runs each"),
        Figure::new(
            "memory: projection catch-up, OpenTelemetry spans",
            traced_catch_up,
            "events/s",
        )
        .against("the same without the tracing layer", untraced_catch_up)
        .note("a span per batch, linked to each event's trace"),
    ])
}
