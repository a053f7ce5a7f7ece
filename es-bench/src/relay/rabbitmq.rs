//! RabbitMQ in the relay bench.

use async_trait::async_trait;
use es_core::integration::ConsumeProgress;
use es_postgres::PgEventStore;
use es_rabbitmq::lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions};
use es_rabbitmq::lapin::types::ShortString;
use es_rabbitmq::lapin::{BasicProperties, Connection, ConnectionProperties};
use es_rabbitmq::{RabbitConfig, RabbitPublisher};
use tokio::sync::watch;

use super::{Arrivals, Broker, Error, body};
use crate::stats::rate;

pub(super) struct Rabbit(pub(super) String);

#[async_trait]
impl Broker for Rabbit {
    type Publisher = RabbitPublisher;

    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    async fn publisher(&self, channel: &str) -> Result<RabbitPublisher, Error> {
        Ok(RabbitPublisher::connect(RabbitConfig::new(&self.0, channel)).await?)
    }

    /// The same client on a confirmed channel, persistent messages to the exchange's queues, one at a time.
    async fn raw(&self, channel: &str, count: usize) -> Result<f64, Error> {
        let exchange = format!("{channel}raw");
        let config = RabbitConfig::new(&self.0, &exchange);
        // The exchange and its queues are declared by the publisher's setup, as the relay's are.
        RabbitPublisher::connect(config.clone()).await?;
        let connection = Connection::connect(&self.0, ConnectionProperties::default()).await?;
        let publishing = connection.create_channel().await?;
        publishing
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let started = std::time::Instant::now();
        for i in 0..count {
            let payload = serde_json::to_vec(&body(i as u64))?;
            publishing
                .basic_publish(
                    ShortString::from(exchange.as_str()),
                    ShortString::from((i % config.queues as usize).to_string()),
                    BasicPublishOptions::default(),
                    &payload,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?
                .await?;
        }
        let rate = rate(count, started.elapsed());
        for n in 0..config.queues {
            publishing
                .queue_delete(
                    ShortString::from(config.queue(n)),
                    QueueDeleteOptions::default(),
                )
                .await?;
        }
        Ok(rate)
    }

    async fn consume(
        &self,
        channel: &str,
        store: PgEventStore,
        handler: Arrivals,
        stop: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let (progress, _) = watch::channel(ConsumeProgress::default());
        let config = RabbitConfig::new(&self.0, channel);
        es_rabbitmq::consume(&config, "bench", &store, &handler, stop, &progress).await?;
        Ok(())
    }

    async fn clean(&self, channel: &str) {
        if let Ok(connection) = Connection::connect(&self.0, ConnectionProperties::default()).await
            && let Ok(deleting) = connection.create_channel().await
        {
            let config = RabbitConfig::new(&self.0, channel);
            for n in 0..config.queues {
                let _ = deleting
                    .queue_delete(
                        ShortString::from(config.queue(n)),
                        QueueDeleteOptions::default(),
                    )
                    .await;
            }
        }
    }
}
