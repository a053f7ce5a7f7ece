//! The three brokers the relay speaks to, behind one face for the relay conformance suite: their shared servers'
//! addresses, private servers ([`PrivateBroker`]), a publisher for a channel, and a consumer loop.

mod private;

use std::time::Duration;

use async_trait::async_trait;
use es_core::integration::{
    ConsumeProgress, Inbox, IntegrationHandler, Outgoing, PublishError, Publisher,
};
use tokio::sync::watch;

pub use private::PrivateBroker;

/// A broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// NATS JetStream.
    Nats,
    /// Kafka (Tansu here).
    Kafka,
    /// RabbitMQ.
    Rabbit,
}

impl Kind {
    /// Its name, as `relay_worker` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nats => "nats",
            Kind::Kafka => "kafka",
            Kind::Rabbit => "rabbitmq",
        }
    }

    /// The kind named `name`.
    pub fn named(name: &str) -> Self {
        match name {
            "nats" => Kind::Nats,
            "kafka" => Kind::Kafka,
            "rabbitmq" => Kind::Rabbit,
            other => panic!("no broker named {other}"),
        }
    }

    /// The shared server: `NATS_URL`, `KAFKA_BROKERS` or `RABBITMQ_URL` (scripts/test sets them), else the usual
    /// local address.
    pub fn url(self) -> String {
        match self {
            Kind::Nats => crate::nats_url(),
            Kind::Kafka => std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| {
                panic!("KAFKA_BROKERS is not set: scripts/test starts Tansu and sets it")
            }),
            Kind::Rabbit => std::env::var("RABBITMQ_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        }
    }
}

/// A publisher of any kind, for `channel` (NATS subject prefix, Kafka topic, RabbitMQ exchange).
#[derive(Debug)]
pub enum AnyPublisher {
    /// NATS.
    Nats(es_nats::NatsPublisher),
    /// Kafka.
    Kafka(es_kafka::KafkaPublisher),
    /// RabbitMQ.
    Rabbit(es_rabbitmq::RabbitPublisher),
}

/// How long a publication waits for the broker: short, so an outage shows soon.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);

impl AnyPublisher {
    /// Connects to the broker at `url` and sets `channel` up.
    pub async fn connect(kind: Kind, url: &str, channel: &str) -> Self {
        match kind {
            Kind::Nats => Self::Nats(
                es_nats::NatsPublisher::connect(
                    url,
                    es_nats::RelayConfig::new(channel).ack_timeout(ACK_TIMEOUT),
                )
                .await
                .expect("NATS publisher"),
            ),
            Kind::Kafka => Self::Kafka(
                es_kafka::KafkaPublisher::connect(kafka_config(url, channel))
                    .await
                    .expect("Kafka publisher"),
            ),
            Kind::Rabbit => Self::Rabbit(
                es_rabbitmq::RabbitPublisher::connect(rabbit_config(url, channel))
                    .await
                    .expect("RabbitMQ publisher"),
            ),
        }
    }
}

fn kafka_config(url: &str, channel: &str) -> es_kafka::KafkaConfig {
    es_kafka::KafkaConfig::new(url, channel)
        .partitions(4)
        .ack_timeout(ACK_TIMEOUT)
}

fn rabbit_config(url: &str, channel: &str) -> es_rabbitmq::RabbitConfig {
    es_rabbitmq::RabbitConfig::new(url, channel)
        .queues(4)
        .ack_timeout(ACK_TIMEOUT)
}

#[async_trait]
impl Publisher for AnyPublisher {
    async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
        match self {
            Self::Nats(p) => p.publish(message).await,
            Self::Kafka(p) => p.publish(message).await,
            Self::Rabbit(p) => p.publish(message).await,
        }
    }
}

/// A consumer running in the background until `stop` says so, starting over after a broker failure.
#[derive(Debug)]
pub struct RunningConsumer {
    /// Says stop.
    pub stop: watch::Sender<bool>,
    /// Its progress.
    pub progress: watch::Receiver<ConsumeProgress>,
    /// Events applied, when it ends.
    pub task: tokio::task::JoinHandle<u64>,
}

/// Runs consumer `name` of `channel` on the broker at `url`, applying with `handler` in `inbox`.
pub fn start_consumer<I, H>(
    kind: Kind,
    url: &str,
    channel: &str,
    name: &str,
    inbox: I,
    handler: H,
) -> RunningConsumer
where
    I: Inbox + Clone,
    H: IntegrationHandler<I>,
{
    let (stop, stopped) = watch::channel(false);
    let (progress, watching) = watch::channel(ConsumeProgress::default());
    let (url, channel, name) = (url.to_owned(), channel.to_owned(), name.to_owned());
    let task = tokio::spawn(async move {
        let mut applied = 0;
        loop {
            let stopping = *stopped.borrow();
            if stopping {
                break;
            }
            let result = match kind {
                Kind::Nats => {
                    consume_nats(
                        &url,
                        &channel,
                        &name,
                        &inbox,
                        &handler,
                        stopped.clone(),
                        &progress,
                    )
                    .await
                }
                Kind::Kafka => es_kafka::consume(
                    &kafka_config(&url, &channel),
                    &name,
                    &inbox,
                    &handler,
                    stopped.clone(),
                    &progress,
                )
                .await
                .map_err(|e| e.to_string()),
                Kind::Rabbit => es_rabbitmq::consume(
                    &rabbit_config(&url, &channel),
                    &name,
                    &inbox,
                    &handler,
                    stopped.clone(),
                    &progress,
                )
                .await
                .map_err(|e| e.to_string()),
            };
            match result {
                Ok(n) => applied += n,
                Err(error) => {
                    eprintln!("consumer {name}: {error}; starting over");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        applied
    });
    RunningConsumer {
        stop,
        progress: watching,
        task,
    }
}

async fn consume_nats<I: Inbox, H: IntegrationHandler<I>>(
    url: &str,
    channel: &str,
    name: &str,
    inbox: &I,
    handler: &H,
    stop: watch::Receiver<bool>,
    progress: &watch::Sender<ConsumeProgress>,
) -> Result<u64, String> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let jetstream = async_nats::jetstream::new(client);
    let relay = es_nats::RelayConfig::new(channel);
    let config = es_nats::ConsumerConfig {
        stream: relay.stream.clone(),
        durable: name.to_owned(),
        filter_subject: format!("{channel}.>"),
    };
    es_nats::consume_reporting(&jetstream, &config, inbox, handler, stop, progress)
        .await
        .map_err(|e| e.to_string())
}
