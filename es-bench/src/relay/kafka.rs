//! Kafka in the relay bench.

use std::time::Duration;

use async_trait::async_trait;
use es_core::integration::ConsumeProgress;
use es_kafka::rdkafka::admin::{AdminClient, AdminOptions};
use es_kafka::rdkafka::client::DefaultClientContext;
use es_kafka::rdkafka::message::{Header, OwnedHeaders};
use es_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use es_kafka::rdkafka::util::Timeout;
use es_kafka::{KafkaConfig, KafkaPublisher};
use es_postgres::PgEventStore;
use tokio::sync::watch;

use super::{Arrivals, Broker, Error, body};
use crate::stats::rate;

pub(super) struct Kafka(pub(super) String);

#[async_trait]
impl Broker for Kafka {
    type Publisher = KafkaPublisher;

    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn publisher(&self, channel: &str) -> Result<KafkaPublisher, Error> {
        Ok(KafkaPublisher::connect(KafkaConfig::new(&self.0, channel)).await?)
    }

    /// The same client with the publisher's settings (idempotent, `acks=all`, no linger), one record at a time.
    async fn raw(&self, channel: &str, count: usize) -> Result<f64, Error> {
        let producer: FutureProducer = es_kafka::rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.0)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("partitioner", "murmur2_random")
            .create()?;
        let topic = format!("{channel}raw");
        // The topic is created by the publisher's setup, as the relay's is.
        KafkaPublisher::connect(KafkaConfig::new(&self.0, &topic)).await?;
        let started = std::time::Instant::now();
        for i in 0..count {
            let key = format!("pulse-{}", i % 10);
            let payload = serde_json::to_vec(&body(i as u64))?;
            // Ten headers of the size of the relay's CloudEvents attributes.
            let headers = (0..10).fold(OwnedHeaders::new(), |h, n| {
                h.insert(Header {
                    key: &format!("ce_attr{n}"),
                    value: Some("01a24e42-8174-74cb-a52b-45c20ce5b48e"),
                })
            });
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&key)
                        .payload(&payload)
                        .headers(headers),
                    Timeout::After(Duration::from_secs(10)),
                )
                .await
                .map_err(|(e, _)| e)?;
        }
        Ok(rate(count, started.elapsed()))
    }

    async fn consume(
        &self,
        channel: &str,
        store: PgEventStore,
        handler: Arrivals,
        stop: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let (progress, _) = watch::channel(ConsumeProgress::default());
        let config = KafkaConfig::new(&self.0, channel);
        es_kafka::consume(&config, "bench", &store, &handler, stop, &progress).await?;
        Ok(())
    }

    async fn clean(&self, channel: &str) {
        let admin: Result<AdminClient<DefaultClientContext>, _> =
            es_kafka::rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &self.0)
                .create();
        if let Ok(admin) = admin {
            let raw = format!("{channel}raw");
            let _ = admin
                .delete_topics(&[channel, raw.as_str()], &AdminOptions::new())
                .await;
        }
    }
}
