//! Projection figures: catch-up rate over a large store (trivial handler; one upserted row per event), and the
//! latency from an append to the read model's commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use es_core::backend::ProjectionWorker;
use es_core::projection::{CheckpointStore, DeadLetterStore, HandlerError, ProjectionOptions};
use es_core::{
    DomainEvent, EventStore, ExpectedVersion, NewEvent, Projection, ProjectionRunner,
    RecordedEvent, StreamId,
};
use es_postgres::{PgEventStore, PgPartitions, PgProjection, PgProjectionWorker};
use sqlx::PgConnection;

use crate::report::Figure;
use crate::stats::{percentile_ms, rate};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The benchmark's event.
#[derive(DomainEvent)]
pub(crate) enum Tick {
    /// The n-th tick.
    Ticked {
        /// Its number.
        n: u64,
    },
}

/// Counts events: the cheapest possible handler.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

#[async_trait]
impl Projection for Counter {
    type Event = Tick;
    fn name(&self) -> &str {
        "bench-counter"
    }
    async fn handle(&self, _: Tick, _: &RecordedEvent) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// One document per stream holding its tick count: a document projection the framework stores.
struct TickCounts;

impl es_core::projection::document::DocumentProjection for TickCounts {
    type Event = Tick;
    type Document = u64;
    fn name(&self) -> &str {
        "bench-documents"
    }
    fn document_id(&self, _: &Tick, record: &RecordedEvent) -> Option<String> {
        Some(record.stream_id.as_str().to_owned())
    }
    fn apply(&self, count: Option<u64>, _: &Tick, _: &RecordedEvent) -> Option<u64> {
        Some(count.unwrap_or(0) + 1)
    }
}

/// Upserts one row per event's stream, in the batch transaction: one statement per event, or (`batched`) one
/// multi-row statement per batch.
#[derive(Clone)]
struct Upserter {
    table: String,
    name: &'static str,
    batched: bool,
}

impl Upserter {
    async fn create(
        store: &PgEventStore,
        name: &'static str,
        batched: bool,
    ) -> Result<Self, Error> {
        let table = format!("\"{}\".\"{}\"", store.schema(), name.replace('-', "_"));
        sqlx::query(&format!(
            "CREATE TABLE {table} (stream text PRIMARY KEY, last bigint NOT NULL, count bigint NOT NULL)"
        ))
        .execute(store.pool())
        .await?;
        Ok(Self {
            table,
            name,
            batched,
        })
    }
}

#[async_trait]
impl PgProjection for Upserter {
    type Event = Tick;
    fn name(&self) -> &str {
        self.name
    }
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Tick,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let Tick::Ticked { n } = event;
        sqlx::query(&format!(
            "INSERT INTO {} (stream, last, count) VALUES ($1, $2, 1)
             ON CONFLICT (stream) DO UPDATE SET last = EXCLUDED.last, count = {0}.count + 1",
            self.table
        ))
        .bind(record.stream_id.as_str())
        .bind(i64::try_from(n)?)
        .execute(tx)
        .await?;
        Ok(())
    }
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: Vec<(Tick, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        if !self.batched {
            for (event, record) in events {
                self.handle(tx, event, record).await?;
            }
            return Ok(());
        }
        // One row per stream: its last tick and how many the batch holds (a statement cannot touch a row twice).
        let mut rows: HashMap<&str, (i64, i64)> = HashMap::new();
        for (Tick::Ticked { n }, record) in events {
            let row = rows.entry(record.stream_id.as_str()).or_default();
            *row = (i64::try_from(n)?, row.1 + 1);
        }
        let mut streams = Vec::with_capacity(rows.len());
        let (mut lasts, mut counts) = (
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
        );
        for (stream, (last, count)) in rows {
            streams.push(stream);
            lasts.push(last);
            counts.push(count);
        }
        sqlx::query(&format!(
            "INSERT INTO {} (stream, last, count) SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[])
             ON CONFLICT (stream) DO UPDATE SET last = EXCLUDED.last, count = {0}.count + EXCLUDED.count",
            self.table
        ))
        .bind(streams)
        .bind(lasts)
        .bind(counts)
        .execute(tx)
        .await?;
        Ok(())
    }
}

/// An I/O-bound read model: waits 1 ms per batch.
#[derive(Clone)]
struct Waiter {
    name: String,
}

#[async_trait]
impl PgProjection for Waiter {
    type Event = Tick;
    fn name(&self) -> &str {
        &self.name
    }
    async fn handle(
        &self,
        _: &mut PgConnection,
        _: Tick,
        _: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn handle_batch(
        &self,
        _: &mut PgConnection,
        _: Vec<(Tick, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(())
    }
}

/// Catch-up of a projection whose handler waits 1 ms per batch of 20: unpartitioned (count 0), then in 8
/// partitions by 1, 2 and 4 workers (each a runner with its own worker identity, as separate processes would be):
/// events/s for each count.
async fn partition_scaling(
    store: &PgEventStore,
    events: usize,
) -> Result<Vec<(usize, f64)>, Error> {
    let head = store.head().await?.ok_or("empty store")?;
    let whole = Waiter {
        name: "bench-scale-whole".to_owned(),
    };
    let unpartitioned =
        PgProjectionWorker::new(store, whole, ProjectionOptions::default().batch_size(20));
    let mut figures = vec![(0, catch_up(store, unpartitioned, events).await?)];
    for workers in [1, 2, 4] {
        let name = format!("bench-scale-{workers}");
        let group = |w: usize| {
            PgPartitions::new(
                store,
                Waiter { name: name.clone() },
                8,
                ProjectionOptions::default().batch_size(20),
            )
            .standby_poll(Duration::from_millis(50))
            .worker_name(format!("bench-worker-{w}"))
        };
        let groups: Vec<_> = (0..workers).map(group).collect();
        for group in &groups {
            group.join().await?;
        }
        let started = Instant::now();
        let running: Vec<_> = groups
            .iter()
            .map(|group| {
                ProjectionRunner::new(store.clone())
                    .with_all(group.workers())
                    .start()
            })
            .collect();
        groups[0].wait_for(head, Duration::from_secs(600)).await?;
        figures.push((workers, rate(events, started.elapsed())));
        for running in running {
            running.shutdown().await;
        }
    }
    Ok(figures)
}

/// Appends `n` events in batches of 100 over 100 streams.
pub(crate) async fn fill<S: EventStore>(store: &S, n: usize) -> Result<(), Error> {
    for (batch, start) in (0..n).step_by(100).enumerate() {
        let stream = StreamId::new(format!("tick-{}", batch % 100))?;
        let events = (start..(start + 100).min(n))
            .map(|i| NewEvent::from_domain(&Tick::Ticked { n: i as u64 }, Default::default()))
            .collect::<Result<Vec<_>, _>>()?;
        store.append(&stream, ExpectedVersion::Any, events).await?;
    }
    Ok(())
}

/// Time for `worker` to catch up from nothing with the whole store.
async fn catch_up<S: EventStore + Clone + 'static>(
    store: &S,
    worker: impl ProjectionWorker,
    events: usize,
) -> Result<f64, Error> {
    let name = worker.name().to_owned();
    let head = store.head().await?.ok_or("empty store")?;
    let started = Instant::now();
    let running = ProjectionRunner::new(store.clone()).with(worker).start();
    running
        .wait_for(&name, head, Duration::from_secs(600))
        .await?;
    let elapsed = started.elapsed();
    running.shutdown().await;
    Ok(rate(events, elapsed))
}

fn options() -> ProjectionOptions {
    ProjectionOptions::default().batch_size(1_000)
}

/// Catch-up of a trivial handler on a store holding `events` events, `ticks` of them its own.
pub(crate) async fn counter_catch_up<S>(
    store: &S,
    events: usize,
    ticks: usize,
) -> Result<f64, Error>
where
    S: EventStore + CheckpointStore + DeadLetterStore + Clone + 'static,
{
    let counter = Counter::default();
    let worker =
        es_core::backend::CheckpointedWorker::new(counter.clone(), store.clone(), options());
    let figure = catch_up(store, worker, events).await?;
    let handled = counter.0.load(Ordering::Relaxed);
    if handled != ticks as u64 {
        return Err(format!("the counter saw {handled} of {ticks} events").into());
    }
    Ok(figure)
}

/// The in-memory figures.
pub(crate) async fn memory(events: usize) -> Result<Vec<Figure>, Error> {
    let store = es_memory::InMemoryEventStore::new();
    fill(&store, events).await?;
    let started = Instant::now();
    let mut count = 0;
    for event in store.read_all(es_core::Position::START, usize::MAX).await? {
        if let Ok(Tick::Ticked { .. }) = event.decode::<Tick>() {
            count += 1;
        }
    }
    let baseline = rate(count, started.elapsed());
    let figure = counter_catch_up(&store, events, events).await?;
    Ok(vec![
        Figure::new(
            "memory: projection catch-up, trivial handler",
            figure,
            "events/s",
        )
        .against("read_all + decode loop", baseline)
        .note(format!("{events} events, batches of 1,000")),
    ])
}

/// The PostgreSQL figures, on a store holding `events` events, `ticks` of them projected.
pub(crate) async fn postgres(
    store: &PgEventStore,
    events: usize,
    ticks: usize,
    raw_read: f64,
    latency_samples: usize,
) -> Result<Vec<Figure>, Error> {
    let trivial = counter_catch_up(store, events, ticks).await?;
    let upserter = Upserter::create(store, "bench-upsert", false).await?;
    let upsert = catch_up(
        store,
        PgProjectionWorker::new(store, upserter.clone(), options()),
        events,
    )
    .await?;
    let batched = Upserter::create(store, "bench-upsert-batch", true).await?;
    let upsert_batched = catch_up(
        store,
        PgProjectionWorker::new(store, batched, options()),
        events,
    )
    .await?;
    let documents = catch_up(
        store,
        es_core::projection::document::DocumentWorker::new(TickCounts, store.clone(), options()),
        events,
    )
    .await?;
    let mut latency = live_latency(store, upserter, latency_samples).await?;
    let scaling = partition_scaling(store, events).await?;
    let figure = |workers: usize| {
        scaling
            .iter()
            .find(|(w, _)| *w == workers)
            .map_or(0.0, |(_, rate)| *rate)
    };
    let one = figure(1);
    Ok(vec![
        Figure::new(
            "postgres: projection catch-up, trivial handler",
            trivial,
            "events/s",
        )
        .against("raw keyset SELECT + serde_json decode", raw_read)
        .note(format!(
            "{events} events, batches of 1,000; at-least-once worker"
        )),
        Figure::new(
            "postgres: projection catch-up, one upserted row per event",
            upsert,
            "events/s",
        )
        .against("projection catch-up, trivial handler", trivial)
        .note("transactional worker: read model and checkpoint in one transaction"),
        Figure::new(
            "postgres: projection catch-up, one upserted row per event, batch handler",
            upsert_batched,
            "events/s",
        )
        .against("one statement per event (above)", upsert)
        .note("`handle_batch`: one UNNEST upsert per batch of 1,000, same transaction"),
        Figure::new(
            "postgres: document projection catch-up, one document per stream",
            documents,
            "events/s",
        )
        .against("projection catch-up, trivial handler", trivial)
        .note("documents loaded, folded and written with the checkpoint: one read and one upsert per batch"),
        Figure::new(
            "postgres: partitioned catch-up, 1 ms per batch, 1 worker",
            one,
            "events/s",
        )
        .against("unpartitioned, same handler", figure(0))
        .note("8 partitions, batches of 20"),
        Figure::new(
            "postgres: partitioned catch-up, 1 ms per batch, 2 workers",
            figure(2),
            "events/s",
        )
        .against("the same with 1 worker", one)
        .note("workers are runners with their own identity in this process"),
        Figure::new(
            "postgres: partitioned catch-up, 1 ms per batch, 4 workers",
            figure(4),
            "events/s",
        )
        .against("the same with 1 worker", one),
        Figure::new(
            "postgres: append → read-model commit, p50",
            percentile_ms(&mut latency, 50.0),
            "ms",
        )
        .note("transactional worker, live, idle store"),
        Figure::new(
            "postgres: append → read-model commit, p99",
            percentile_ms(&mut latency, 99.0),
            "ms",
        ),
    ])
}

/// Append start → the transactional projection's checkpoint passing it (its read model committed).
async fn live_latency(
    store: &PgEventStore,
    upserter: Upserter,
    samples: usize,
) -> Result<Vec<Duration>, Error> {
    let worker = PgProjectionWorker::new(store, upserter, options());
    let running = ProjectionRunner::new(store.clone()).with(worker).start();
    if let Some(head) = store.head().await? {
        running
            .wait_for("bench-upsert", head, Duration::from_secs(600))
            .await?;
    }
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let stream = StreamId::new(format!("live-tick-{i}"))?;
        let event = NewEvent::from_domain(&Tick::Ticked { n: i as u64 }, Default::default())?;
        let started = Instant::now();
        let written = store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await?;
        running
            .wait_for(
                "bench-upsert",
                written.last_position,
                Duration::from_secs(30),
            )
            .await?;
        out.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.shutdown().await;
    Ok(out)
}
