//! The outbox example: the bank's events, relayed to a broker as public integration events, reach another service
//! once each and in order.
//!
//! Run it from the workspace root against one broker (the store is in memory):
//! ```text
//! cargo run --example outbox -- --nats nats://127.0.0.1:4222
//! cargo run --example outbox -- --kafka 127.0.0.1:9092
//! cargo run --example outbox -- --rabbitmq amqp://guest:guest@127.0.0.1:5672/%2f
//! ```

use std::time::Duration;

use es_core::integration::{
    CloudEvent, ConsumeProgress, IntegrationEvent, IntegrationHandler, IntegrationMapper,
    Publisher, Relay,
};
use es_core::projection::{HandlerError, ProjectionOptions};
use es_core::{EventStore, Metadata, RecordedEvent, Repository};
use es_memory::{InMemoryEventStore, MemoryTransaction};
use examples::bank::{Account, AccountCommand, AccountEvent};
use examples::store_choice::run_suffix;
use tokio::sync::watch;

const USAGE: &str = "usage: outbox (--nats URL | --kafka BROKERS | --rabbitmq URL)";
/// How long the example waits for the other service.
const WAIT: Duration = Duration::from_secs(120);

/// The bank's public events: what other services may rely on, whatever the account's private events become.
struct PublicAccountEvents;

impl IntegrationMapper for PublicAccountEvents {
    type Event = AccountEvent;

    fn map(
        &self,
        event: &AccountEvent,
        _: &RecordedEvent,
    ) -> Result<Option<IntegrationEvent>, HandlerError> {
        Ok(Some(match event {
            AccountEvent::Opened { owner } => IntegrationEvent::new(
                "bank.account.opened.v1",
                serde_json::json!({ "owner": owner }),
            ),
            AccountEvent::Deposited { amount } => IntegrationEvent::new(
                "bank.account.deposited.v1",
                serde_json::json!({ "amount": amount }),
            ),
            AccountEvent::Withdrawn { amount } => IntegrationEvent::new(
                "bank.account.withdrawn.v1",
                serde_json::json!({ "amount": amount }),
            ),
            // Closing is the bank's own business.
            AccountEvent::Closed => return Ok(None),
        }))
    }
}

/// The other service: prints what it learns. Its inbox is a store of its own (in memory here).
struct Ledger;

#[es_core::async_trait]
impl IntegrationHandler<InMemoryEventStore> for Ledger {
    async fn handle(
        &self,
        _: &mut MemoryTransaction,
        event: &CloudEvent,
    ) -> Result<(), HandlerError> {
        println!(
            "ledger service: {} #{} {} {}",
            event.subject, event.sequence, event.event_type, event.data
        );
        Ok(())
    }
}

enum Broker {
    Nats(String),
    Kafka(String),
    Rabbit(String),
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let broker = match args.as_slice() {
        [flag, url] if flag == "--nats" => Broker::Nats(url.clone()),
        [flag, url] if flag == "--kafka" => Broker::Kafka(url.clone()),
        [flag, url] if flag == "--rabbitmq" => Broker::Rabbit(url.clone()),
        _ => return Err(USAGE.into()),
    };
    // A channel (subject prefix, topic, exchange) per run, so the example can run again on the same broker.
    let channel = format!("bank{}", run_suffix());
    let store = InMemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    for owner in ["ada", "grace"] {
        accounts
            .execute(
                owner,
                &AccountCommand::Open {
                    owner: owner.into(),
                },
                Metadata::new(),
            )
            .await?;
        for amount in [50, 20] {
            accounts
                .execute(owner, &AccountCommand::Deposit { amount }, Metadata::new())
                .await?;
        }
    }
    accounts
        .execute(
            "ada",
            &AccountCommand::Withdraw { amount: 30 },
            Metadata::new(),
        )
        .await?;
    let events = store
        .read_all(es_core::Position::START, usize::MAX)
        .await?
        .len() as u64;

    let (stop, stopped) = watch::channel(false);
    let (progress, mut applied) = watch::channel(ConsumeProgress::default());
    let inbox = InMemoryEventStore::new();
    match broker {
        Broker::Nats(url) => {
            let config = es_nats::RelayConfig::new(&channel);
            let publisher = es_nats::NatsPublisher::connect(&url, config.clone()).await?;
            let running = relay(&channel, publisher, &store);
            let client = es_nats::async_nats::connect(url.as_str()).await?;
            let jetstream = es_nats::async_nats::jetstream::new(client);
            let consumer = es_nats::ConsumerConfig {
                stream: config.stream.clone(),
                durable: "ledger".into(),
                filter_subject: format!("{channel}.>"),
            };
            let consuming = es_nats::consume_reporting(
                &jetstream, &consumer, &inbox, &Ledger, stopped, &progress,
            );
            until_applied(consuming, &mut applied, events, &stop).await?;
            running.shutdown().await;
            jetstream.delete_stream(&config.stream).await?;
        }
        Broker::Kafka(brokers) => {
            let config = es_kafka::KafkaConfig::new(&brokers, &channel);
            let running = relay(
                &channel,
                es_kafka::KafkaPublisher::connect(config.clone()).await?,
                &store,
            );
            let consuming =
                es_kafka::consume(&config, "ledger", &inbox, &Ledger, stopped, &progress);
            until_applied(consuming, &mut applied, events, &stop).await?;
            running.shutdown().await;
        }
        Broker::Rabbit(url) => {
            let config = es_rabbitmq::RabbitConfig::new(&url, &channel);
            let running = relay(
                &channel,
                es_rabbitmq::RabbitPublisher::connect(config.clone()).await?,
                &store,
            );
            let consuming =
                es_rabbitmq::consume(&config, "ledger", &inbox, &Ledger, stopped, &progress);
            until_applied(consuming, &mut applied, events, &stop).await?;
            running.shutdown().await;
        }
    }
    println!(
        "\n{events} events stored; the ledger service applied each public one once, in account order."
    );
    Ok(())
}

/// The relay of the bank's store through `publisher`, as source `channel`.
fn relay<P: Publisher>(
    channel: &str,
    publisher: P,
    store: &InMemoryEventStore,
) -> es_core::projection::RunningProjections {
    Relay::new(channel, PublicAccountEvents, publisher).start(
        store.clone(),
        store.clone(),
        ProjectionOptions::default(),
    )
}

/// Runs `consuming` until it applied `events` events (every one of the story is public), then stops it.
async fn until_applied<E: std::error::Error + 'static>(
    consuming: impl std::future::Future<Output = Result<u64, E>>,
    applied: &mut watch::Receiver<ConsumeProgress>,
    events: u64,
    stop: &watch::Sender<bool>,
) -> Result<(), Box<dyn std::error::Error>> {
    let waiting = async {
        tokio::time::timeout(WAIT, applied.wait_for(|p| p.applied >= events))
            .await
            .map(|_| ())
    };
    let (consumed, waited) = tokio::join!(consuming, async {
        let waited = waiting.await;
        let _ = stop.send(true);
        waited
    });
    consumed?;
    waited.map_err(|_| {
        format!("the ledger service did not receive all {events} events within {WAIT:?}")
    })?;
    Ok(())
}
