//! NATS JetStream in the relay bench.

use async_trait::async_trait;
use es_nats::{ConsumerConfig, NatsPublisher, RelayConfig};
use es_postgres::PgEventStore;
use tokio::sync::watch;

use super::{Arrivals, Broker, Error, body};
use crate::stats::rate;

pub(super) struct Nats(pub(super) String);

impl Nats {
    async fn jetstream(&self) -> Result<async_nats::jetstream::Context, Error> {
        Ok(async_nats::jetstream::new(
            async_nats::connect(&self.0).await?,
        ))
    }
}

#[async_trait]
impl Broker for Nats {
    type Publisher = NatsPublisher;

    fn name(&self) -> &'static str {
        "nats"
    }

    async fn publisher(&self, channel: &str) -> Result<NatsPublisher, Error> {
        Ok(NatsPublisher::connect(&self.0, RelayConfig::new(channel)).await?)
    }

    async fn raw(&self, channel: &str, count: usize) -> Result<f64, Error> {
        let jetstream = self.jetstream().await?;
        let subject = format!("{channel}.raw");
        let started = std::time::Instant::now();
        for i in 0..count {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("raw-{i}").as_str(),
            );
            let payload = serde_json::to_vec(&body(i as u64))?;
            jetstream
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await?
                .await?;
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
        let config = ConsumerConfig {
            stream: RelayConfig::new(channel).stream,
            durable: "bench".into(),
            filter_subject: format!("{channel}.pulse"),
        };
        es_nats::consume(&self.jetstream().await?, &config, &store, &handler, stop).await?;
        Ok(())
    }

    async fn clean(&self, channel: &str) {
        if let Ok(jetstream) = self.jetstream().await {
            let _ = jetstream
                .delete_stream(RelayConfig::new(channel).stream)
                .await;
        }
    }
}
