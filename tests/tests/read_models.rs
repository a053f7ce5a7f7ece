//! Declared read models on PostgreSQL: the worker creates the tables before the first batch and empties them for a
//! rebuild (no DDL in the application), and a new version is built beside the live one and switched to atomically
//! (blue/green): a reader polling during the switch only ever sees a complete model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{HandlerError, ProjectionOptions, ProjectionState};
use es_core::{ProjectionRunner, RecordedEvent};
use es_postgres::{PgEventStore, PgProjection, PgProjectionWorker, ReadModel};
use sqlx::PgConnection;
use tests::ledger::{LedgerEvent, Totals, post};
use tests::pg_store;

const WAIT: Duration = Duration::from_secs(60);

/// Balances per account; version 2 also counts postings (a new column: a new version).
struct Balances {
    version: u32,
}

#[async_trait]
impl PgProjection for Balances {
    type Event = LedgerEvent;
    fn name(&self) -> &str {
        "balances"
    }
    fn read_model(&self) -> Option<ReadModel> {
        let columns = match self.version {
            1 => "account text PRIMARY KEY, total bigint NOT NULL",
            _ => "account text PRIMARY KEY, total bigint NOT NULL, postings bigint NOT NULL",
        };
        Some(ReadModel::new(self.version).table("balances", columns))
    }
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: LedgerEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let LedgerEvent::Posted { amount } = event;
        // No schema: the worker puts the version's own schema first on the search path.
        let sql = match self.version {
            1 => {
                "INSERT INTO balances (account, total) VALUES ($1, $2) \
                 ON CONFLICT (account) DO UPDATE SET total = balances.total + EXCLUDED.total"
            }
            _ => {
                "INSERT INTO balances (account, total, postings) VALUES ($1, $2, 1) \
                 ON CONFLICT (account) DO UPDATE SET total = balances.total + EXCLUDED.total, \
                 postings = balances.postings + 1"
            }
        };
        sqlx::query(sql)
            .bind(record.stream_id.as_str())
            .bind(amount)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// What readers see through the view: accounts and the sum of their totals.
async fn seen(store: &PgEventStore) -> (i64, i64) {
    sqlx::query_as(&format!(
        "SELECT count(*), coalesce(sum(total), 0)::bigint FROM \"{}\".balances",
        store.schema()
    ))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

fn expected(totals: &Totals) -> (i64, i64) {
    (totals.totals.len() as i64, totals.totals.values().sum())
}

fn worker(store: &PgEventStore, version: u32) -> PgProjectionWorker<Balances> {
    PgProjectionWorker::new(
        store,
        Balances { version },
        ProjectionOptions::default().batch_size(100),
    )
    .standby_poll(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_read_model_is_created_before_the_first_batch_and_rebuilt_without_ddl() {
    let store = pg_store().await;
    let (totals, last) = post(&store, "acct", 300, 7, 5).await;
    let running = ProjectionRunner::new(store.clone())
        .with(worker(&store, 1))
        .start();
    running.wait_for("balances", last, WAIT).await.unwrap();
    assert_eq!(seen(&store).await, expected(&totals));
    running.rebuild("balances").await.unwrap();
    running.wait_for("balances", last, WAIT).await.unwrap();
    assert_eq!(seen(&store).await, expected(&totals), "the rebuild differs");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_version_builds_beside_the_live_one_and_readers_switch_atomically() {
    let store = pg_store().await;
    let (totals, last) = post(&store, "acct", 3_000, 20, 10).await;
    let blue = ProjectionRunner::new(store.clone())
        .with(worker(&store, 1))
        .start();
    blue.wait_for("balances", last, WAIT).await.unwrap();
    let complete = expected(&totals);

    // A reader polls the view the whole time: every look must show the complete model, old or new.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut looks = 0u32;
            while !stop.load(Ordering::SeqCst) {
                assert_eq!(
                    seen(&store).await,
                    complete,
                    "a reader saw a partial read model"
                );
                looks += 1;
            }
            looks
        })
    };
    let green = ProjectionRunner::new(store.clone())
        .with(worker(&store, 2))
        .start();
    green.wait_for("balances@v2", last, WAIT).await.unwrap();
    // The switch follows the catch-up; the new column shows when readers see version 2.
    let columns = format!(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{}' AND table_name = 'balances' \
         AND column_name = 'postings'",
        store.schema()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while sqlx::query_scalar::<_, i64>(&columns)
        .fetch_one(store.pool())
        .await
        .unwrap()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readers never switched to version 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let looks = reader.await.unwrap();
    assert!(looks > 10, "the reader looked only {looks} times");
    let postings: i64 = sqlx::query_scalar(&format!(
        "SELECT sum(postings)::bigint FROM \"{}\".balances",
        store.schema()
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(postings, 3_000);

    // The old version is retired: its worker stops at its next batch instead of writing on, and its schema is gone.
    let (more, after) = post(&store, "late", 10, 2, 5).await;
    green.wait_for("balances@v2", after, WAIT).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match blue.state("balances").unwrap() {
            ProjectionState::Failed { error } => {
                assert!(error.contains("retired"), "{error}");
                break;
            }
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the retired worker runs on: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let old_schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(format!("{}_rm_balances_v1", store.schema()))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(old_schemas, 0, "the retired version's schema is left");
    let mut all = totals.clone();
    all.totals.extend(more.totals);
    assert_eq!(seen(&store).await, expected(&all));
    blue.shutdown().await;
    green.shutdown().await;
}
