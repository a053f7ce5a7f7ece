//! Declared read models on SQLite: the worker creates the tables when it becomes active, empties them for a rebuild
//! (the projection has no reset of its own), rebuilds them from the start when their version rises, refuses an
//! older version, and names a bad table in its error (the projection stays `lost`, retrying, and writes nothing); a batch handler writes the whole batch at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{HandlerError, ProjectionOptions};
use es_core::{ProjectionRunner, RecordedEvent};
use es_sqlite::{ReadModel, SqliteEventStore, SqliteProjection, SqliteProjectionWorker};
use sqlx::SqliteConnection;
use tests::ledger::{LedgerEvent, Totals, post};
use tests::sqlite_store;

const WAIT: Duration = Duration::from_secs(60);

/// Balances per account, written one statement per batch; version 2 also counts postings.
struct Balances {
    version: u32,
    table: &'static str,
}

#[async_trait]
impl SqliteProjection for Balances {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "balances"
    }
    fn read_model(&self) -> Option<ReadModel> {
        let columns = match self.version {
            1 => "account TEXT PRIMARY KEY, total INTEGER NOT NULL",
            _ => "account TEXT PRIMARY KEY, total INTEGER NOT NULL, postings INTEGER NOT NULL",
        };
        Some(ReadModel::new(self.version).table(self.table, columns))
    }
    async fn handle(
        &self,
        tx: &mut SqliteConnection,
        event: LedgerEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        self.handle_batch(tx, vec![(event, record)]).await
    }
    async fn handle_batch(
        &self,
        tx: &mut SqliteConnection,
        events: Vec<(LedgerEvent, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        let mut sums: HashMap<&str, (i64, i64)> = HashMap::new();
        for (LedgerEvent::Posted { amount }, record) in events {
            let sum = sums.entry(record.stream_id.as_str()).or_default();
            *sum = (sum.0 + amount, sum.1 + 1);
        }
        let rows: Vec<serde_json::Value> = sums
            .into_iter()
            .map(|(account, (total, postings))| serde_json::json!([account, total, postings]))
            .collect();
        let sql = match self.version {
            1 => {
                "INSERT INTO balances (account, total) \
                 SELECT value ->> 0, value ->> 1 FROM json_each(?1) WHERE true \
                 ON CONFLICT (account) DO UPDATE SET total = total + excluded.total"
            }
            _ => {
                "INSERT INTO balances (account, total, postings) \
                 SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1) WHERE true \
                 ON CONFLICT (account) DO UPDATE SET total = total + excluded.total, \
                 postings = postings + excluded.postings"
            }
        };
        sqlx::query(sql)
            .bind(serde_json::Value::Array(rows).to_string())
            .execute(tx)
            .await?;
        Ok(())
    }
}

async fn seen(store: &SqliteEventStore) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), coalesce(sum(total), 0) FROM balances")
        .fetch_one(store.readers())
        .await
        .unwrap()
}

async fn postings(store: &SqliteEventStore) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(postings), 0) FROM balances")
        .fetch_one(store.readers())
        .await
        .unwrap()
}

fn expected(totals: &Totals) -> (i64, i64) {
    (totals.totals.len() as i64, totals.totals.values().sum())
}

fn worker(store: &SqliteEventStore, version: u32) -> SqliteProjectionWorker<Balances> {
    let balances = Balances {
        version,
        table: "balances",
    };
    SqliteProjectionWorker::new(store, balances, ProjectionOptions::default().batch_size(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_read_model_is_created_rebuilt_without_a_reset_and_rebuilt_for_a_new_version() {
    let store = sqlite_store().await;
    let (totals, last) = post(&store, "acct", 300, 7, 5).await;
    let running = ProjectionRunner::new(store.clone())
        .with(worker(&store, 1))
        .start();
    running.wait_for("balances", last, WAIT).await.unwrap();
    assert_eq!(seen(&store).await, expected(&totals));
    // No reset in the projection: the worker owns the table and empties it; a replay onto it would double.
    running.rebuild("balances").await.unwrap();
    running.wait_for("balances", last, WAIT).await.unwrap();
    assert_eq!(seen(&store).await, expected(&totals), "the rebuild differs");
    running.shutdown().await;

    // Version 2 has a new column: the old table goes, the new one is built from the start.
    let running = ProjectionRunner::new(store.clone())
        .with(worker(&store, 2))
        .start();
    running.wait_for("balances", last, WAIT).await.unwrap();
    assert_eq!(seen(&store).await, expected(&totals));
    assert_eq!(postings(&store).await, 300);
    running.shutdown().await;

    // A worker of version 1 (an old deployment) refuses to build over version 2.
    let running = ProjectionRunner::new(store.clone())
        .with(worker(&store, 1))
        .start();
    let stopped = wait_until_failed(&running).await;
    assert!(stopped.contains("version 2"), "{stopped}");
    running.shutdown().await;
    assert_eq!(
        postings(&store).await,
        300,
        "the old worker changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_naming_a_store_table_is_refused_with_the_table_named() {
    let store = sqlite_store().await;
    let bad = Balances {
        version: 1,
        table: "checkpoints",
    };
    let running = ProjectionRunner::new(store.clone())
        .with(SqliteProjectionWorker::new(
            &store,
            bad,
            ProjectionOptions::default(),
        ))
        .start();
    let stopped = wait_until_failed(&running).await;
    assert!(stopped.contains("`checkpoints`"), "{stopped}");
    running.shutdown().await;
}

/// The error that keeps the projection from becoming active, waiting at most `WAIT`.
async fn wait_until_failed(running: &es_core::projection::RunningProjections) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = running.state("balances").unwrap();
        if let Some(error) = state.error() {
            return error.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "{state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
