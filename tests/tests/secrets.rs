//! No password reaches a log line or an error's text: every connecting component (the PostgreSQL store, its
//! projection workers, the NATS relay) is run with a planted secret in its URL and TRACE logging captured, and the
//! logs and every error's Display and Debug are searched for it. One test in this binary: it installs the global
//! log subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use es_core::projection::ProjectionOptions;
use es_core::{EventStore, ExpectedVersion, NewEvent, Position, ProjectionRunner, StreamId};
use es_nats::{NatsPublisher, RelayConfig};
use es_postgres::{PgEventStore, PgProjectionWorker};
use tests::ledger::PgLedger;
use tests::{database_url, fresh_schema, nats_url};

const SECRET: &str = "pl4nted-S3CRET";

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `url` with `SECRET` as its password.
fn with_secret(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (userinfo, host) = rest.split_once('@').unwrap_or(("postgres", rest));
    let user = userinfo.split(':').next().unwrap_or("postgres");
    format!("{scheme}://{user}:{SECRET}@{host}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_or_an_error() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");
    let mut texts = Vec::new();
    let mut record = |error: &dyn std::fmt::Debug, display: String| {
        texts.push(format!("{display} / {error:?}"));
    };

    // PostgreSQL: a store, its appends, reads and a transactional projection.
    let url = with_secret(&database_url());
    let store = PgEventStore::builder()
        .schema(fresh_schema())
        .connect(&url)
        .await
        .unwrap();
    record(&store, String::new());
    store.migrate().await.unwrap();
    let stream = StreamId::new("acct-1").unwrap();
    let event = NewEvent::new("Posted", 1, serde_json::json!({ "amount": 1 }));
    let written = store
        .append(&stream, ExpectedVersion::Any, vec![event])
        .await
        .unwrap();
    store.read_all(Position::START, 10).await.unwrap();
    let ledger = PgLedger::create(&store).await;
    let worker = PgProjectionWorker::new(&store, ledger, ProjectionOptions::default());
    record(&worker, String::new());
    let running = ProjectionRunner::new(store.clone()).with(worker).start();
    running
        .wait_for("ledger", written.last_position, Duration::from_secs(30))
        .await
        .unwrap();
    running.shutdown().await;

    // Failures that name connections: nobody listening, a schema never migrated.
    let dead = PgEventStore::builder()
        .connect_timeout(Duration::from_secs(1))
        .connect(&with_secret("postgres://postgres@127.0.0.1:1/test"))
        .await
        .unwrap_err();
    record(&dead, dead.to_string());
    let unmigrated = PgEventStore::builder()
        .schema(fresh_schema())
        .connect(&url)
        .await
        .unwrap();
    let error = unmigrated
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("Posted", 1, serde_json::json!({}))],
        )
        .await
        .unwrap_err();
    record(&error, error.to_string());
    let bad_url = PgEventStore::connect(&format!(
        "{}&sslmode=nonsense",
        with_secret(&database_url())
    ))
    .await
    .unwrap_err();
    record(&bad_url, bad_url.to_string());

    // NATS: the relay with a user and password in its URL.
    let nats = with_secret(&nats_url().replace("nats://", "nats://relay@"));
    let relay = tokio::time::timeout(
        Duration::from_secs(30),
        NatsPublisher::connect(
            &nats,
            RelayConfig::new(format!("secrets{}", fastrand::u32(..))),
        ),
    )
    .await
    .expect("the relay did not connect");
    match &relay {
        Ok(relay) => record(relay, String::new()),
        Err(error) => record(error, error.to_string()),
    }
    drop(relay);

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    assert!(
        logs.contains("connect"),
        "the capture saw no connection logging, so it proves nothing:\n{logs}"
    );
    if let Some(line) = logs.lines().find(|line| line.contains(SECRET)) {
        panic!("a log line carries the password: {line}");
    }
    for text in &texts {
        assert!(
            !text.contains(SECRET),
            "an error or value shows the password: {text}"
        );
    }
}
