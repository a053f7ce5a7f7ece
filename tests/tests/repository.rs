//! The repository: metadata flow, retries on conflict, paging.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use es_core::aggregate::RepositoryError;
use es_core::{EventStore, Metadata, Repository, StreamRead};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand};
use uuid::Uuid;

type Accounts = Repository<Account, Arc<InMemoryEventStore>>;

#[tokio::test]
async fn command_metadata_flows_into_every_event() {
    let accounts = Accounts::new(Arc::new(InMemoryEventStore::new()));
    let (correlation, causation) = (Uuid::now_v7(), Uuid::now_v7());
    let metadata = Metadata::new()
        .with_correlation_id(correlation)
        .with_causation_id(causation)
        .with("user", "alice");
    accounts
        .execute(
            "1",
            &AccountCommand::Open { owner: "A".into() },
            metadata.clone(),
        )
        .await
        .unwrap();
    accounts
        .execute("1", &AccountCommand::Deposit { amount: 3 }, metadata)
        .await
        .unwrap();
    let stream = Accounts::stream_id("1").unwrap();
    let events = accounts
        .store()
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    for event in events {
        assert_eq!(event.metadata.correlation_id, Some(correlation));
        assert_eq!(event.metadata.causation_id, Some(causation));
        assert_eq!(event.metadata.extra["user"], "alice");
        assert!(event.metadata.occurred_at.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_aggregate_all_land_by_deciding_again() {
    let accounts = Accounts::new(Arc::new(InMemoryEventStore::new())).with_max_attempts(100);
    let loaded = tests::racing_deposits(accounts, 8, 25).await;
    assert_eq!(loaded.state.balance, 200);
    assert_eq!(loaded.version.get(), 201);
}

#[tokio::test]
async fn gives_up_after_the_configured_attempts_with_a_typed_error() {
    /// A store whose every append loses the race.
    struct AlwaysConflicts(InMemoryEventStore);

    #[async_trait::async_trait]
    impl EventStore for AlwaysConflicts {
        async fn append(
            &self,
            stream: &es_core::StreamId,
            expected: es_core::ExpectedVersion,
            _: Vec<es_core::NewEvent>,
        ) -> Result<es_core::store::AppendResult, es_core::StoreError> {
            Err(es_core::StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: Some(es_core::Version::new(99)),
            })
        }
        async fn read_stream(
            &self,
            stream: &es_core::StreamId,
            read: StreamRead,
        ) -> Result<Vec<es_core::RecordedEvent>, es_core::StoreError> {
            self.0.read_stream(stream, read).await
        }
        async fn read_all(
            &self,
            after: es_core::Position,
            limit: usize,
        ) -> Result<Vec<es_core::RecordedEvent>, es_core::StoreError> {
            self.0.read_all(after, limit).await
        }
        fn subscribe_all(&self, after: es_core::Position) -> es_core::store::EventStream {
            self.0.subscribe_all(after)
        }
    }

    let accounts = Repository::<Account, _>::new(AlwaysConflicts(InMemoryEventStore::new()))
        .with_max_attempts(4);
    let error = accounts
        .execute(
            "1",
            &AccountCommand::Open { owner: "A".into() },
            Metadata::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, RepositoryError::TooManyConflicts { attempts: 4, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("after 4 attempts"), "{error}");
}

#[tokio::test]
async fn loads_long_streams_in_pages() {
    let accounts = Accounts::new(Arc::new(InMemoryEventStore::new())).with_page_size(7);
    accounts
        .execute(
            "1",
            &AccountCommand::Open { owner: "A".into() },
            Metadata::new(),
        )
        .await
        .unwrap();
    for _ in 0..49 {
        accounts
            .execute("1", &AccountCommand::Deposit { amount: 2 }, Metadata::new())
            .await
            .unwrap();
    }
    let loaded = accounts.load("1").await.unwrap();
    assert_eq!((loaded.version.get(), loaded.state.balance), (50, 98));
}

#[tokio::test]
async fn a_command_that_decides_nothing_appends_nothing() {
    /// An aggregate whose command is a no-op once done.
    #[derive(Default, Clone)]
    struct Flag(bool);
    #[derive(Debug, PartialEq, es_core::DomainEvent)]
    #[event(aggregate = Flag)]
    enum FlagEvent {
        Raised,
    }
    impl es_core::Aggregate for Flag {
        const CATEGORY: &'static str = "flag";
        type Event = FlagEvent;
        type Command = ();
        type Error = std::convert::Infallible;
        fn handle(&self, _: &()) -> Result<Vec<FlagEvent>, Self::Error> {
            Ok(if self.0 {
                vec![]
            } else {
                vec![FlagEvent::Raised]
            })
        }
        fn apply(self, _: &FlagEvent) -> Self {
            Flag(true)
        }
    }
    let flags = Repository::<Flag, _>::new(InMemoryEventStore::new());
    assert!(
        flags
            .execute("f", &(), Metadata::new())
            .await
            .unwrap()
            .append
            .is_some()
    );
    let again = flags.execute("f", &(), Metadata::new()).await.unwrap();
    assert!(again.append.is_none() && again.events.is_empty());
    assert_eq!(again.version.get(), 1);
}
