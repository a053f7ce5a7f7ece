//! Misuse of the API gives a typed error that names what was wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::aggregate::RepositoryError;
use es_core::store::{DecodeError, StreamIdError};
use es_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StoreError, StreamId, Version,
};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand};
use serde_json::json;

type Accounts = Repository<Account, InMemoryEventStore>;

#[tokio::test]
async fn a_wrong_expected_version_names_the_stream_and_both_versions() {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("account-7").unwrap();
    let opened = NewEvent::new("Opened", 1, json!({ "owner": "Ada" }));
    store
        .append(&stream, ExpectedVersion::NoStream, vec![opened])
        .await
        .unwrap();

    let late = NewEvent::new("Deposited", 1, json!({ "amount": 1 }));
    let error = store
        .append(&stream, ExpectedVersion::Exact(Version::new(4)), vec![late])
        .await
        .unwrap_err();
    assert!(matches!(
        &error,
        StoreError::Conflict { stream: s, expected: ExpectedVersion::Exact(e), actual: Some(a) }
            if s == &stream && e.get() == 4 && a.get() == 1
    ));
    assert_eq!(
        error.to_string(),
        "conflict on stream `account-7`: expected version 4, but it is at version 1"
    );
}

#[tokio::test]
async fn an_unknown_event_type_in_storage_names_stream_version_position_and_type() {
    let accounts = Accounts::new(InMemoryEventStore::new());
    accounts
        .execute(
            "7",
            &AccountCommand::Open {
                owner: "Ada".into(),
            },
            Metadata::new(),
        )
        .await
        .unwrap();
    let stream = Accounts::stream_id("7").unwrap();
    let alien = NewEvent::new("Teleported", 1, json!({ "to": "Mars" }));
    let written = accounts
        .store()
        .append(&stream, ExpectedVersion::Any, vec![alien])
        .await
        .unwrap();

    let error = accounts.load("7").await.unwrap_err();
    let RepositoryError::Decode(decode) = &error else {
        panic!("expected a decode error, got {error:?}")
    };
    assert_eq!(decode.stream, stream);
    assert_eq!(decode.version, Version::new(2));
    assert_eq!(decode.position, written.last_position);
    assert_eq!(decode.event_type, "Teleported");
    assert!(
        matches!(&decode.source, DecodeError::UnknownType { event_type, .. } if event_type == "Teleported")
    );
    let message = error.to_string();
    for part in [
        "account-7",
        "@2",
        "Teleported",
        "unknown event type",
        "Deposited",
    ] {
        assert!(
            message.contains(part),
            "`{message}` does not mention {part}"
        );
    }
}

#[tokio::test]
async fn a_payload_that_does_not_fit_and_an_old_schema_version_are_named() {
    let accounts = Accounts::new(InMemoryEventStore::new());
    let stream = Accounts::stream_id("8").unwrap();
    let events = vec![
        NewEvent::new("Opened", 2, json!({ "owner": 42 })),
        NewEvent::new("Deposited", 2, json!({ "amount": 1 })),
    ];
    accounts
        .store()
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let error = accounts.load("8").await.unwrap_err();
    assert!(
        matches!(&error, RepositoryError::Decode(e) if matches!(e.source, DecodeError::Payload { event_type: "Opened", .. })),
        "{error:?}"
    );

    let stream = Accounts::stream_id("9").unwrap();
    let events = vec![NewEvent::new("Opened", 3, json!({ "owner": "Ada" }))];
    accounts
        .store()
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let error = accounts.load("9").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("stored at schema version 3, this code reads version 2"),
        "{error}"
    );
}

#[tokio::test]
async fn an_invalid_aggregate_id_is_refused_before_any_io() {
    let accounts = Accounts::new(InMemoryEventStore::new());
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    let error = accounts
        .execute("", &open, Metadata::new())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RepositoryError::InvalidId(StreamIdError::Empty)
    ));
    let error = accounts
        .execute("a\u{0}b", &open, Metadata::new())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("invalid aggregate id"),
        "{error}"
    );
    assert!(
        std::error::Error::source(&error)
            .unwrap()
            .to_string()
            .contains("control character at byte 9"),
        "{error:?}"
    );
    assert!(
        StreamId::new("x".repeat(300))
            .unwrap_err()
            .to_string()
            .contains("300 bytes")
    );
}

#[tokio::test]
async fn a_rejected_command_carries_the_domain_error_and_writes_nothing() {
    let accounts = Accounts::new(InMemoryEventStore::new());
    let error = accounts
        .execute("1", &AccountCommand::Deposit { amount: 5 }, Metadata::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RepositoryError::Rejected { ref stream, .. } if stream.as_str() == "account-1")
    );
    assert_eq!(
        error.to_string(),
        "command rejected by `account-1`: the account is not open"
    );
    assert!(
        accounts
            .store()
            .read_all(es_core::Position::START, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn connecting_to_a_dead_address_fails_within_the_connect_timeout_naming_host_and_port() {
    let started = std::time::Instant::now();
    let error = es_postgres::PgEventStore::builder()
        .connect("postgres://app:hunter2@127.0.0.1:1/app?sslmode=disable")
        .await
        .unwrap_err();
    let took = started.elapsed();
    let text = error.to_string();
    assert!(
        matches!(error, es_postgres::PgSetupError::Connect { port: 1, .. }),
        "{error:?}"
    );
    assert!(
        text.contains("127.0.0.1:1") && !text.contains("hunter2"),
        "{text}"
    );
    // The default connect timeout is 5 s; this only catches the old 30 s wait.
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
    // What went wrong, not "pool timed out".
    assert!(text.contains("refused"), "{text}");
}

#[tokio::test]
async fn a_bad_schema_name_is_refused_before_connecting() {
    let error = es_postgres::PgEventStore::builder()
        .schema("no\"good")
        .connect("postgres://app@127.0.0.1:1/app?sslmode=disable")
        .await
        .unwrap_err();
    assert!(
        matches!(error, es_postgres::PgSetupError::InvalidSchemaName { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_store_used_before_migrate_says_what_is_missing_and_how_to_fix_it() {
    let store = es_postgres::PgEventStore::builder()
        .schema(tests::fresh_schema())
        .connect(&tests::database_url())
        .await
        .unwrap();
    let stream = StreamId::new("acct-1").unwrap();
    let error = store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("Opened", 1, json!({}))],
        )
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("does not exist") && text.contains("migrate()"),
        "{text}"
    );
}

#[tokio::test]
async fn a_projection_halted_by_a_payload_keeps_serdes_reason() {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("acct-1").unwrap();
    let bad = NewEvent::new("Posted", 1, json!({ "amount": "ten" }));
    let written = store
        .append(&stream, ExpectedVersion::Any, vec![bad])
        .await
        .unwrap();
    let running = es_core::ProjectionRunner::new(store.clone())
        .with_projection(
            tests::ledger::MemoryLedger::named("ledger"),
            store.clone(),
            es_core::projection::ProjectionOptions::default().max_attempts(1),
        )
        .start();
    let error = running
        .wait_for(
            "ledger",
            written.last_position,
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("invalid type") && text.contains("acct-1@1"),
        "{text}"
    );
}
