//! The RabbitMQ publisher: persistent messages, each confirmed by the broker, one stream always to one queue.

use async_trait::async_trait;
use es_core::integration::{Outgoing, PublishError, Publisher};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::RabbitConfig;
use crate::headers::properties;

/// Setting the publisher up failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RabbitSetupError {
    /// The server could not be reached, or refused the exchange or a queue.
    #[error("cannot set up RabbitMQ exchange `{exchange}`")]
    Broker {
        /// The exchange.
        exchange: String,
        /// Why.
        #[source]
        source: lapin::Error,
    },
}

/// Publishes to a durable direct exchange: each message persistent, routed by `partition_of(stream id, queues)` to
/// one of the exchange's durable queues (single active consumer each), CloudEvents attributes as `cloudEvents_*`
/// headers. `Ok` only after the broker's publisher confirm; a connection that failed or timed out is replaced on
/// the next publish.
pub struct RabbitPublisher {
    config: RabbitConfig,
    link: Mutex<Option<Link>>,
}

struct Link {
    /// Kept open while its channel is used.
    _connection: Connection,
    channel: Channel,
}

impl std::fmt::Debug for RabbitPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitPublisher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Opens a connection and a confirmed channel, and declares the exchange and its queues (idempotent).
pub(crate) async fn open(
    config: &RabbitConfig,
    confirms: bool,
) -> Result<(Connection, Channel), lapin::Error> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    if confirms {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
    }
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            ShortString::from(config.exchange.as_str()),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("x-single-active-consumer"),
        AMQPValue::Boolean(true),
    );
    for n in 0..config.queues {
        let queue = ShortString::from(config.queue(n));
        let options = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(queue.clone(), options, arguments.clone())
            .await?;
        channel
            .queue_bind(
                queue,
                ShortString::from(config.exchange.as_str()),
                ShortString::from(n.to_string()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok((connection, channel))
}

impl RabbitPublisher {
    /// Connects and declares the exchange and its queues.
    ///
    /// # Errors
    /// [`RabbitSetupError`].
    pub async fn connect(config: RabbitConfig) -> Result<Self, RabbitSetupError> {
        let (connection, channel) =
            open(&config, true)
                .await
                .map_err(|source| RabbitSetupError::Broker {
                    exchange: config.exchange.clone(),
                    source,
                })?;
        Ok(Self {
            config,
            link: Mutex::new(Some(Link {
                _connection: connection,
                channel,
            })),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &RabbitConfig {
        &self.config
    }

    /// The channel to publish on, connecting again when there is none or it closed.
    async fn channel(&self) -> Result<Channel, PublishError> {
        let mut link = self.link.lock().await;
        if let Some(open) = link.as_ref()
            && open.channel.status().connected()
        {
            return Ok(open.channel.clone());
        }
        *link = None;
        let (connection, channel) = open(&self.config, true)
            .await
            .map_err(|e| PublishError::transient(format!("cannot reach RabbitMQ: {e}")))?;
        *link = Some(Link {
            _connection: connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    /// Drops `failed`'s connection if it is still the current one: the next publish connects again.
    async fn forget(&self, failed: &Channel) {
        let mut link = self.link.lock().await;
        if link.as_ref().is_some_and(|l| l.channel.id() == failed.id()) {
            *link = None;
        }
    }
}

#[async_trait]
impl Publisher for RabbitPublisher {
    async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
        let channel = self.channel().await?;
        let routing = es_core::store::partition_of(&message.key, self.config.queues).to_string();
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let sent = channel
            .basic_publish(
                ShortString::from(self.config.exchange.as_str()),
                ShortString::from(routing),
                mandatory,
                &message.data,
                properties(message),
            )
            .await;
        let confirm = match sent {
            Ok(confirm) => confirm,
            Err(e) => {
                self.forget(&channel).await;
                return Err(PublishError::transient(format!("RabbitMQ: {e}")));
            }
        };
        match tokio::time::timeout(self.config.ack_timeout, confirm).await {
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => Err(PublishError::transient(format!(
                "no queue of exchange `{}` took it",
                self.config.exchange
            ))),
            Ok(Ok(Confirmation::Nack(_))) => {
                Err(PublishError::transient("RabbitMQ refused to store it"))
            }
            Ok(Ok(Confirmation::NotRequested)) => {
                Err(PublishError::fatal("publisher confirms are off"))
            }
            Ok(Err(e)) => {
                self.forget(&channel).await;
                Err(PublishError::transient(format!("RabbitMQ: {e}")))
            }
            Err(_) => {
                self.forget(&channel).await;
                Err(PublishError::transient(format!(
                    "no confirm within {:?}",
                    self.config.ack_timeout
                )))
            }
        }
    }
}
