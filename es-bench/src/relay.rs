//! The outbox relay: events/s to JetStream with acknowledgements, against raw JetStream publishes; and the latency
//! from an append to another service's handler.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use es_core::projection::{HandlerError, ProjectionOptions};
use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use es_nats::{
    CloudEvent, ConsumerConfig, IntegrationEvent, IntegrationHandler, IntegrationMapper,
    NatsPublisher, Relay, RelayConfig, consume,
};
use es_postgres::{PgEventStore, PgTransaction};
use tokio::sync::{mpsc, watch};

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

/// Publishes every pulse.
struct PublicPulses;

impl IntegrationMapper for PublicPulses {
    type Event = Pulse;
    fn map(
        &self,
        Pulse::Pulsed { n }: &Pulse,
        _: &RecordedEvent,
    ) -> Result<Option<IntegrationEvent>, HandlerError> {
        Ok(Some(IntegrationEvent::new(
            "bench.pulse.v1",
            serde_json::json!({ "n": n, "note": "a small payload" }),
        )))
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

fn pulse(n: u64) -> Result<NewEvent, Error> {
    Ok(NewEvent::from_domain(
        &Pulse::Pulsed { n },
        Default::default(),
    )?)
}

pub(crate) async fn run(
    store: &PgEventStore,
    nats_url: &str,
    events: usize,
    samples: usize,
) -> Result<Vec<Figure>, Error> {
    let prefix = format!("bench{}", std::process::id());
    let config = RelayConfig::new(&prefix);
    let client = async_nats::connect(nats_url).await?;
    let jetstream = async_nats::jetstream::new(client);
    for batch in 0..events / 100 {
        let stream = StreamId::new(format!("pulse-{}", batch % 10))?;
        let batch = (0..100)
            .map(|k| pulse((batch * 100 + k) as u64))
            .collect::<Result<Vec<_>, _>>()?;
        store.append(&stream, ExpectedVersion::Any, batch).await?;
    }
    let head = store.head().await?.ok_or("empty store")?;

    let publisher = NatsPublisher::connect(nats_url, config.clone()).await?;
    let relay = Relay::new(&prefix, PublicPulses, publisher);
    let started = Instant::now();
    let running = relay.start(store.clone(), store.clone(), ProjectionOptions::default());
    running
        .wait_for(&format!("relay-{prefix}"), head, Duration::from_secs(600))
        .await?;
    let relayed = rate(events, started.elapsed());

    // The raw limit: the same number of publishes, each awaited for its acknowledgement.
    let raw_subject = format!("{prefix}.raw");
    let body = serde_json::to_vec(&serde_json::json!({ "n": 1, "note": "a small payload" }))?;
    let started = Instant::now();
    for i in 0..events {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("raw-{i}").as_str(),
        );
        jetstream
            .publish_with_headers(raw_subject.clone(), headers, body.clone().into())
            .await?
            .await?;
    }
    let raw = rate(events, started.elapsed());

    // Latency: append → the consumer's handler, one event at a time on an idle system.
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let consumer_config = ConsumerConfig {
        stream: config.stream.clone(),
        durable: "bench".into(),
        filter_subject: format!("{prefix}.pulse"),
    };
    let consumer_store = store.clone();
    let consumer = tokio::spawn({
        let jetstream = jetstream.clone();
        async move {
            consume(
                &jetstream,
                &consumer_config,
                &consumer_store,
                &Arrivals(arrived),
                stopped,
            )
            .await
        }
    });
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(2), arrivals.recv()).await {}
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let event = pulse(i as u64)?;
        let id = event.event_id;
        let started = Instant::now();
        store
            .append(
                &StreamId::new(format!("pulse-live-{i}"))?,
                ExpectedVersion::NoStream,
                vec![event],
            )
            .await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), arrivals.recv()).await {
                Ok(Some(got)) if got == id => break,
                Ok(Some(_)) => {}
                _ => return Err(format!("event {id} never reached the consumer").into()),
            }
        }
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(true);
    consumer.await??;
    running.shutdown().await;
    let _ = jetstream.delete_stream(&config.stream).await;
    Ok(vec![
        Figure::new(
            "relay to JetStream, each publish acknowledged",
            relayed,
            "events/s",
        )
        .against("raw JetStream publish + ack loop", raw)
        .note(format!(
            "{events} events published (others in the store skipped); checkpoint after each batch"
        )),
        Figure::new(
            "append → other service's handler via JetStream, p50",
            percentile_ms(&mut latencies, 50.0),
            "ms",
        )
        .note("relay live + durable consumer with event-id de-duplication in PostgreSQL"),
        Figure::new(
            "append → other service's handler via JetStream, p99",
            percentile_ms(&mut latencies, 99.0),
            "ms",
        ),
    ])
}
