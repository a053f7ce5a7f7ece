//! The outbox relay per broker: events/s published with acknowledgements, against a raw publish-and-confirm loop of
//! the same client in the same run; and the latency from an append to another service's handler.

mod kafka;
mod nats;
mod rabbitmq;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use es_core::integration::{
    CloudEvent, IntegrationEvent, IntegrationHandler, IntegrationMapper, Publisher, Relay,
};
use es_core::projection::{HandlerError, ProjectionOptions};
use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use es_postgres::{PgEventStore, PgTransaction};
use tokio::sync::{mpsc, watch};

use crate::Options;
use crate::report::Figure;
use crate::stats::{percentile_ms, rate};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The relayed event.
#[derive(DomainEvent)]
enum Pulse {
    /// The n-th pulse.
    Pulsed {
        /// Its number.
        n: u64,
    },
}

/// The body every publication carries, the relay's and the raw loop's alike.
fn body(n: u64) -> serde_json::Value {
    serde_json::json!({ "n": n, "note": "a small payload" })
}

/// Publishes every pulse.
struct PublicPulses;

impl IntegrationMapper for PublicPulses {
    type Event = Pulse;
    fn map(
        &self,
        Pulse::Pulsed { n }: &Pulse,
        _: &RecordedEvent,
    ) -> Result<Option<IntegrationEvent>, HandlerError> {
        Ok(Some(IntegrationEvent::new("bench.pulse.v1", body(*n))))
    }
}

/// Tells the benchmark when an event reached the other service.
struct Arrivals(mpsc::UnboundedSender<es_core::EventId>);

#[async_trait]
impl IntegrationHandler<PgEventStore> for Arrivals {
    async fn handle(&self, _: &mut PgTransaction, event: &CloudEvent) -> Result<(), HandlerError> {
        let _ = self.0.send(event.id);
        Ok(())
    }
}

/// One broker's side of the bench: its publisher, its raw loop and its consumer.
#[async_trait]
trait Broker: Send + Sync {
    type Publisher: Publisher;

    /// Its name in the figures.
    fn name(&self) -> &'static str;

    /// A publisher for `channel` (subject prefix, topic, exchange).
    async fn publisher(&self, channel: &str) -> Result<Self::Publisher, Error>;

    /// `count` publications of the same body, each awaited for its acknowledgement, by the same client library.
    async fn raw(&self, channel: &str, count: usize) -> Result<f64, Error>;

    /// Runs a consumer of `channel` that de-duplicates in `store`, until `stop`.
    async fn consume(
        &self,
        channel: &str,
        store: PgEventStore,
        handler: Arrivals,
        stop: watch::Receiver<bool>,
    ) -> Result<(), Error>;

    /// Removes what the bench created.
    async fn clean(&self, channel: &str);
}

/// The figures of every broker: NATS and RabbitMQ always, Kafka with `--kafka` (or `KAFKA_BROKERS`). Each runs on a
/// store of its own (schema `es_bench_<pid>_<broker>`, dropped after).
pub(crate) async fn run(options: &Options) -> Result<Vec<Figure>, Error> {
    let mut figures = Vec::new();
    figures.extend(on_own_store(options, &nats::Nats(options.nats_url.clone())).await?);
    match &options.kafka_brokers {
        Some(brokers) => {
            figures.extend(on_own_store(options, &kafka::Kafka(brokers.clone())).await?)
        }
        None => eprintln!("es-bench: Kafka not measured (no --kafka and no KAFKA_BROKERS)"),
    }
    figures.extend(on_own_store(options, &rabbitmq::Rabbit(options.rabbitmq_url.clone())).await?);
    Ok(figures)
}

async fn on_own_store<B: Broker>(options: &Options, broker: &B) -> Result<Vec<Figure>, Error> {
    let schema = format!("es_bench_{}_{}", std::process::id(), broker.name());
    let store = PgEventStore::builder()
        .schema(&schema)
        .connect(&options.database_url)
        .await?;
    store.migrate().await?;
    let result = measure(&store, broker, options.appends * 5, options.latency_samples).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await?;
    result
}

fn pulse(n: u64) -> Result<NewEvent, Error> {
    Ok(NewEvent::from_domain(
        &Pulse::Pulsed { n },
        Default::default(),
    )?)
}

async fn measure<B: Broker>(
    store: &PgEventStore,
    broker: &B,
    events: usize,
    samples: usize,
) -> Result<Vec<Figure>, Error> {
    let name = broker.name();
    let channel = format!("bench{}{name}", std::process::id());
    // The relay's events, appended before the clock starts.
    let category = "pulse";
    for batch in 0..events / 100 {
        let stream = StreamId::new(format!("{category}-{}", batch % 10))?;
        let batch = (0..100)
            .map(|k| pulse((batch * 100 + k) as u64))
            .collect::<Result<Vec<_>, _>>()?;
        store.append(&stream, ExpectedVersion::Any, batch).await?;
    }
    let head = store.head().await?.ok_or("empty store")?;

    let relay = Relay::new(&channel, PublicPulses, broker.publisher(&channel).await?);
    let relay_name = relay.name();
    let started = Instant::now();
    let running = relay.start(store.clone(), store.clone(), ProjectionOptions::default());
    running
        .wait_for(&relay_name, head, Duration::from_secs(600))
        .await?;
    let relayed = rate(events, started.elapsed());
    // The same events again through a relay of its own with 8 streams in flight (each stream's still in order).
    let wide = format!("{channel}w");
    let relay = Relay::new(&wide, PublicPulses, broker.publisher(&wide).await?);
    let wide_name = relay.name();
    let started = Instant::now();
    let wide_running = relay.start(
        store.clone(),
        store.clone(),
        ProjectionOptions::default().concurrency(8),
    );
    wide_running
        .wait_for(&wide_name, head, Duration::from_secs(600))
        .await?;
    let relayed_wide = rate(events, started.elapsed());
    wide_running.shutdown().await;
    broker.clean(&wide).await;
    let raw = broker.raw(&channel, events).await?;

    // Latency: append → the consumer's handler, one event at a time on an idle system.
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let consumer = broker.consume(&channel, store.clone(), Arrivals(arrived), stopped);
    let measured = async {
        // The backlog first (every pulse relayed above), then one at a time.
        for _ in 0..events {
            if !matches!(
                tokio::time::timeout(Duration::from_secs(60), arrivals.recv()).await,
                Ok(Some(_))
            ) {
                return Err::<_, Error>(
                    format!("the {name} consumer did not receive the backlog").into(),
                );
            }
        }
        let mut latencies = Vec::with_capacity(samples);
        for i in 0..samples {
            let event = pulse(i as u64)?;
            let id = event.event_id;
            let started = Instant::now();
            store
                .append(
                    &StreamId::new(format!("{category}-live{i}"))?,
                    ExpectedVersion::NoStream,
                    vec![event],
                )
                .await?;
            loop {
                match tokio::time::timeout(Duration::from_secs(60), arrivals.recv()).await {
                    Ok(Some(got)) if got == id => break,
                    Ok(Some(_)) => {}
                    _ => {
                        return Err::<_, Error>(
                            format!("event {id} never reached the {name} consumer").into(),
                        );
                    }
                }
            }
            latencies.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(true);
        Ok(latencies)
    };
    let (consumed, latencies) = tokio::join!(consumer, measured);
    consumed?;
    let mut latencies = latencies?;
    running.shutdown().await;
    broker.clean(&channel).await;
    Ok(vec![
        Figure::new(
            format!("relay to {name}, each publish acknowledged"),
            relayed,
            "events/s",
        )
        .against(
            format!("raw {name} publish + acknowledgement loop, same client"),
            raw,
        )
        .note(format!(
            "{events} events, one stream's at a time in order; checkpoint after each batch"
        )),
        Figure::new(
            format!("relay to {name}, 8 streams in flight"),
            relayed_wide,
            "events/s",
        )
        .against(format!("raw {name} publish + acknowledgement loop, same client"), raw)
        .note("ProjectionOptions::concurrency(8): each stream's events still one after another, in order"),
        Figure::new(
            format!("append → other service's handler via {name}, p50"),
            percentile_ms(&mut latencies, 50.0),
            "ms",
        )
        .note("relay live + consumer with event-id de-duplication in PostgreSQL"),
        Figure::new(
            format!("append → other service's handler via {name}, p99"),
            percentile_ms(&mut latencies, 99.0),
            "ms",
        ),
    ])
}
