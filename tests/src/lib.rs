//! Support for the integration tests in `tests/tests/`: PostgreSQL test stores, each in a schema of its own.
//!
//! These helpers exist to fail tests loudly, so they panic with a message that says what to do.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod bank_relay;
pub mod brokers;
pub mod child;
pub mod ledger;
pub mod private_pg;
pub mod relay_suite;
pub mod sqlite_ledger;
pub mod tally;
pub mod webdriver;
pub mod wire;
pub mod worker_suite;

use std::sync::atomic::{AtomicU32, Ordering};

use es_postgres::PgEventStore;

/// A fresh SQLite file path for one test, under the temp directory (`es-sqlite-tests/<run>/`).
pub fn fresh_sqlite_path() -> std::path::PathBuf {
    let dir = std::env::temp_dir()
        .join("es-sqlite-tests")
        .join(schema_prefix());
    std::fs::create_dir_all(&dir).expect("a directory for test databases");
    dir.join(format!("{}.db", fresh_schema()))
}

/// A SQLite store in a fresh file.
pub async fn sqlite_store() -> es_sqlite::SqliteEventStore {
    let path = fresh_sqlite_path();
    es_sqlite::SqliteEventStore::open(&path)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The database the tests use: `DATABASE_URL`, else the local server on 127.0.0.1:5432.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".to_owned())
}

/// The NATS server the tests use: `NATS_URL`, else the local server on 127.0.0.1:4222.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The prefix of this run's schemas: `es_test_<run>_`. `scripts/test` sets `ES_TEST_RUN` and drops the schemas
/// of its run when it ends; without it, each test process picks its own.
pub fn schema_prefix() -> String {
    let run = std::env::var("ES_TEST_RUN").unwrap_or_else(|_| std::process::id().to_string());
    format!("es_test_{run}_")
}

/// A fresh schema name for one test: unique within the run, and across the test binaries of one run.
pub fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}{}_{}",
        schema_prefix(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        &uuid[..8]
    )
}

/// A migrated store in a fresh schema. Panics, naming the URL, when PostgreSQL cannot be reached: the suite
/// must fail, not skip, without its database.
pub async fn pg_store() -> PgEventStore {
    pg_store_with(PgEventStore::builder()).await
}

/// Like [`pg_store`], with the builder's other settings.
pub async fn pg_store_with(builder: es_postgres::PgEventStoreBuilder) -> PgEventStore {
    let url = database_url();
    let store = builder
        .schema(fresh_schema())
        .max_connections(12)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to PostgreSQL at {url}: {e}. Start it, or set DATABASE_URL; scripts/test does both")
        });
    store.migrate().await.expect("migrate a fresh schema");
    store
}

/// Appends one event to `stream` inside `tx` with the store's own append function, leaving the transaction open:
/// a writer that has taken its positions but not committed yet. Fault-injection tests commit or roll it back.
pub async fn append_in_open_transaction(
    tx: &mut sqlx::PgConnection,
    store: &PgEventStore,
    stream: &str,
    n: u64,
) -> es_core::EventId {
    let id = es_core::EventId::new();
    let sql = format!(
        "SELECT outcome FROM \"{}\".append_many(ARRAY[$1], ARRAY[NULL::bigint], ARRAY[1], $2, $3, $4, $5, $6)",
        store.schema()
    );
    let (outcome,): (String,) = sqlx::query_as(&sql)
        .bind(stream)
        .bind(vec![id.as_uuid()])
        .bind(vec!["Held"])
        .bind(vec![1_i32])
        .bind(vec![serde_json::json!({ "n": n })])
        .bind(vec![serde_json::json!({})])
        .fetch_one(tx)
        .await
        .expect("append in an open transaction");
    assert_eq!(outcome, "appended");
    id
}

/// Executes plain SQL (one or more statements) in the store's schema (the way an old release or an operator would).
pub async fn execute_in_schema(store: &PgEventStore, sql: &str) {
    let mut conn = store.pool().acquire().await.expect("a connection");
    sqlx::query(&format!("SET search_path TO \"{}\"", store.schema()))
        .execute(&mut *conn)
        .await
        .expect("set search_path");
    let result = sqlx::raw_sql(sql).execute(&mut *conn).await;
    sqlx::query("RESET search_path")
        .execute(&mut *conn)
        .await
        .expect("reset search_path");
    result.unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
}

/// A NATS server of a test's own (JetStream on, storage in a temporary directory) that the test can stop and
/// restart on the same port, to play a broker outage.
#[derive(Debug)]
pub struct PrivateNats {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateNats {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let dir = std::env::temp_dir().join(format!("es-nats-{}-{port}", std::process::id()));
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.restart();
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL), keeping its storage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill nats-server");
            child.wait().expect("reap nats-server");
        }
    }

    /// Starts it again on the same port and storage, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let binary =
            std::env::var("NATS_SERVER").unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
        let child = std::process::Command::new(&binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary}: {e}; set NATS_SERVER to a nats-server binary")
            });
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("nats-server did not start on port {}", self.port);
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every stream's events as (type, payload), for comparing runs whose event ids differ. Waits until the global
/// order shows every stored event (PostgreSQL's horizon can hold back the newest while other transactions in the
/// cluster are open).
pub async fn all_streams<S>(
    store: &S,
) -> std::collections::BTreeMap<String, Vec<(String, serde_json::Value)>>
where
    S: es_core::EventStore + es_core::evolution::EventCatalog,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stored: u64 = store
            .stored_event_types()
            .await
            .expect("event types")
            .iter()
            .map(|k| k.count)
            .sum();
        let events = store
            .read_all(es_core::Position::START, usize::MAX)
            .await
            .expect("read_all");
        if events.len() as u64 == stored {
            let mut all = std::collections::BTreeMap::<String, Vec<_>>::new();
            for event in events {
                all.entry(event.stream_id.to_string())
                    .or_default()
                    .push((event.event_type, event.payload));
            }
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "read_all never showed all {stored} stored events"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Opens account `1`, then deposits 1 from each of `tasks` tasks `each` times, all racing on the one stream; returns
/// the account as loaded afterwards.
pub async fn racing_deposits<S: es_core::EventStore + 'static>(
    accounts: es_core::Repository<examples::bank::Account, S>,
    tasks: usize,
    each: usize,
) -> es_core::aggregate::Loaded<examples::bank::Account> {
    use examples::bank::AccountCommand;
    let accounts = std::sync::Arc::new(accounts);
    let open = AccountCommand::Open { owner: "A".into() };
    accounts
        .execute("1", &open, es_core::Metadata::new())
        .await
        .expect("open");
    let racers: Vec<_> = (0..tasks)
        .map(|_| {
            let accounts = std::sync::Arc::clone(&accounts);
            tokio::spawn(async move {
                for _ in 0..each {
                    let deposit = AccountCommand::Deposit { amount: 1 };
                    accounts
                        .execute("1", &deposit, es_core::Metadata::new())
                        .await
                        .expect("deposit");
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.expect("task");
    }
    accounts.load("1").await.expect("load")
}
