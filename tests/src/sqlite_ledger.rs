//! The ledger projection (see [`crate::ledger`]) in tables of a SQLite store's file, exactly-once:
//! `ledger_applied` (one row per event id; a second application would violate its key) and `ledger_totals`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use es_core::RecordedEvent;
use es_core::projection::HandlerError;
use es_sqlite::{SqliteEventStore, SqliteProjection};
use sqlx::SqliteConnection;

use crate::ledger::{LedgerEvent, POISON, Totals};

/// The ledger in the store's file.
#[derive(Clone, Debug, Default)]
pub struct SqliteLedger {
    /// A pause per event, to make batches long enough to be killed in the middle.
    pub slow: Duration,
    /// Whether [`POISON`] fails.
    pub poisoned: Arc<AtomicBool>,
}

impl SqliteLedger {
    /// The ledger of `store`'s file; creates its tables.
    pub async fn create(store: &SqliteEventStore) -> Self {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS ledger_applied (event_id BLOB PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS ledger_totals (stream TEXT PRIMARY KEY, total INTEGER NOT NULL, count INTEGER NOT NULL);",
        )
        .execute(store.writer())
        .await
        .expect("create ledger tables");
        Self {
            slow: Duration::ZERO,
            poisoned: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The totals as stored.
    pub async fn totals(&self, store: &SqliteEventStore) -> Totals {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT stream, total, count FROM ledger_totals")
                .fetch_all(store.readers())
                .await
                .expect("read totals");
        let mut totals = Totals::default();
        for (stream, total, count) in rows {
            totals.totals.insert(stream.clone(), total);
            totals.counts.insert(stream, count);
        }
        totals
    }

    /// Rows in `ledger_applied`.
    pub async fn applied(&self, store: &SqliteEventStore) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ledger_applied")
            .fetch_one(store.readers())
            .await
            .expect("count applied")
    }
}

#[async_trait]
impl SqliteProjection for SqliteLedger {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "ledger"
    }

    async fn handle(
        &self,
        tx: &mut SqliteConnection,
        event: LedgerEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let LedgerEvent::Posted { amount } = event;
        if amount == POISON && self.poisoned.load(Ordering::SeqCst) {
            return Err(format!("poisoned posting in {}", record.stream_id).into());
        }
        if !self.slow.is_zero() {
            tokio::time::sleep(self.slow).await;
        }
        sqlx::query("INSERT INTO ledger_applied (event_id, stream, version) VALUES (?1, ?2, ?3)")
            .bind(record.event_id.as_uuid())
            .bind(record.stream_id.as_str())
            .bind(i64::try_from(record.version.get()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ledger_totals (stream, total, count) VALUES (?1, ?2, 1) \
             ON CONFLICT (stream) DO UPDATE SET total = total + excluded.total, count = count + 1",
        )
        .bind(record.stream_id.as_str())
        .bind(amount)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn reset(&self, tx: &mut SqliteConnection) -> Result<(), HandlerError> {
        sqlx::query("DELETE FROM ledger_applied")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ledger_totals").execute(tx).await?;
        Ok(())
    }
}
