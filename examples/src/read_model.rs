//! A read model of the bank: each account's balance, and a per-day summary of money in and out.
//!
//! The projection logic is one pure function, [`change`]; two flavours apply it: [`MemoryBalances`] (any store,
//! at-least-once, de-duplicated by event id; what unit tests use), [`PgBalances`] (PostgreSQL tables, written in
//! the transaction that moves the checkpoint: exactly-once) and [`SqliteBalances`] (the same in a SQLite file).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::NaiveDate;
use es_core::projection::HandlerError;
use es_core::{Projection, RecordedEvent};
use es_postgres::{PgProjection, SchemaName};
use es_sqlite::{SqliteEventStore, SqliteProjection};
use sqlx::{PgConnection, SqliteConnection};

use crate::bank::AccountEvent;

/// What one event changes in the read model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The account (its stream id).
    pub account: String,
    /// The day it happened (UTC).
    pub day: NaiveDate,
    /// Cents in.
    pub deposited: u64,
    /// Cents out.
    pub withdrawn: u64,
}

/// The change `event` makes; `None` for events that move no money (opened, closed).
pub fn change(event: &AccountEvent, record: &RecordedEvent) -> Option<Change> {
    let (deposited, withdrawn) = match event {
        AccountEvent::Deposited { amount } => (*amount, 0),
        AccountEvent::Withdrawn { amount } => (0, *amount),
        AccountEvent::Opened { .. } | AccountEvent::Closed => return None,
    };
    let day = record
        .metadata
        .occurred_at
        .unwrap_or(record.recorded_at)
        .date_naive();
    Some(Change {
        account: record.stream_id.to_string(),
        day,
        deposited,
        withdrawn,
    })
}

/// One day's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaySummary {
    /// Cents deposited.
    pub deposited: u64,
    /// Cents withdrawn.
    pub withdrawn: u64,
    /// Deposits and withdrawals.
    pub transactions: u64,
}

/// The read model in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadModel {
    /// Balance per account, in cents.
    pub balances: BTreeMap<String, i64>,
    /// Totals per day.
    pub days: BTreeMap<NaiveDate, DaySummary>,
    seen: HashSet<es_core::EventId>,
}

impl ReadModel {
    fn apply(&mut self, event_id: es_core::EventId, change: Change) {
        // At-least-once delivery: an event handled before a crash may come again.
        if !self.seen.insert(event_id) {
            return;
        }
        let delta = i64::try_from(change.deposited).unwrap_or(i64::MAX)
            - i64::try_from(change.withdrawn).unwrap_or(i64::MAX);
        *self.balances.entry(change.account).or_default() += delta;
        let day = self.days.entry(change.day).or_default();
        day.deposited += change.deposited;
        day.withdrawn += change.withdrawn;
        day.transactions += 1;
    }
}

/// The read model kept in memory, for any store and for unit tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryBalances(Arc<Mutex<ReadModel>>);

impl MemoryBalances {
    /// A copy of the read model now.
    pub fn snapshot(&self) -> ReadModel {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Projection for MemoryBalances {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "balances"
    }

    async fn handle(
        &self,
        event: AccountEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        if let Some(change) = change(&event, record) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(record.event_id, change);
        }
        Ok(())
    }

    async fn reset(&self) -> Result<(), HandlerError> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = ReadModel::default();
        Ok(())
    }
}

/// The read model in PostgreSQL tables `balances` and `daily_summary` of a schema, exactly-once.
#[derive(Clone, Debug)]
pub struct PgBalances {
    schema: SchemaName,
}

impl PgBalances {
    /// The read model in `schema` (validated).
    ///
    /// # Errors
    /// When the schema name is refused.
    pub fn new(schema: &str) -> Result<Self, es_postgres::PgSetupError> {
        Ok(Self {
            schema: SchemaName::new(schema)?,
        })
    }

    /// Creates the schema and tables if missing.
    ///
    /// # Errors
    /// The database's.
    pub async fn create_tables(&self, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
        let s = self.schema.as_str();
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{s}\";
             CREATE TABLE IF NOT EXISTS \"{s}\".balances (account text PRIMARY KEY, balance bigint NOT NULL);
             CREATE TABLE IF NOT EXISTS \"{s}\".daily_summary (day date PRIMARY KEY, deposited bigint NOT NULL,
                 withdrawn bigint NOT NULL, transactions bigint NOT NULL);"
        ))
        .execute(pool)
        .await
        .map(drop)
    }

    /// The read model as stored.
    ///
    /// # Errors
    /// The database's.
    pub async fn read(&self, pool: &sqlx::PgPool) -> Result<ReadModel, sqlx::Error> {
        let s = self.schema.as_str();
        let balances: Vec<(String, i64)> =
            sqlx::query_as(&format!("SELECT account, balance FROM \"{s}\".balances"))
                .fetch_all(pool)
                .await?;
        let days: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT day, deposited, withdrawn, transactions FROM \"{s}\".daily_summary"
        ))
        .fetch_all(pool)
        .await?;
        Ok(stored_model(balances, days))
    }
}

/// The read model from its stored rows: balances, and (day, deposited, withdrawn, transactions).
fn stored_model(balances: Vec<(String, i64)>, days: Vec<(NaiveDate, i64, i64, i64)>) -> ReadModel {
    let to_u64 = |n: i64| u64::try_from(n).unwrap_or_default();
    ReadModel {
        balances: balances.into_iter().collect(),
        days: days
            .into_iter()
            .map(|(day, d, w, t)| {
                (
                    day,
                    DaySummary {
                        deposited: to_u64(d),
                        withdrawn: to_u64(w),
                        transactions: to_u64(t),
                    },
                )
            })
            .collect(),
        seen: HashSet::new(),
    }
}

#[async_trait]
impl PgProjection for PgBalances {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "balances"
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: AccountEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let Some(change) = change(&event, record) else {
            return Ok(());
        };
        let s = self.schema.as_str();
        let (deposited, withdrawn) = (
            i64::try_from(change.deposited)?,
            i64::try_from(change.withdrawn)?,
        );
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".balances (account, balance) VALUES ($1, $2)
             ON CONFLICT (account) DO UPDATE SET balance = balances.balance + EXCLUDED.balance"
        ))
        .bind(&change.account)
        .bind(deposited - withdrawn)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".daily_summary (day, deposited, withdrawn, transactions) VALUES ($1, $2, $3, 1)
             ON CONFLICT (day) DO UPDATE SET deposited = daily_summary.deposited + EXCLUDED.deposited,
                 withdrawn = daily_summary.withdrawn + EXCLUDED.withdrawn,
                 transactions = daily_summary.transactions + 1"
        ))
        .bind(change.day)
        .bind(deposited)
        .bind(withdrawn)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn reset(&self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let s = self.schema.as_str();
        let truncate = format!("TRUNCATE \"{s}\".balances, \"{s}\".daily_summary");
        sqlx::query(&truncate).execute(tx).await?;
        Ok(())
    }
}

/// The read model in tables `balances` and `daily_summary` of a SQLite store's file, exactly-once.
#[derive(Clone, Copy, Debug, Default)]
pub struct SqliteBalances;

impl SqliteBalances {
    /// Creates the tables if missing.
    ///
    /// # Errors
    /// The database's.
    pub async fn create_tables(&self, store: &SqliteEventStore) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS daily_summary (day TEXT PRIMARY KEY, deposited INTEGER NOT NULL,
                 withdrawn INTEGER NOT NULL, transactions INTEGER NOT NULL);",
        )
        .execute(store.writer())
        .await
        .map(drop)
    }

    /// The read model as stored.
    ///
    /// # Errors
    /// The database's.
    pub async fn read(&self, store: &SqliteEventStore) -> Result<ReadModel, sqlx::Error> {
        let balances: Vec<(String, i64)> = sqlx::query_as("SELECT account, balance FROM balances")
            .fetch_all(store.readers())
            .await?;
        let days: Vec<(NaiveDate, i64, i64, i64)> =
            sqlx::query_as("SELECT day, deposited, withdrawn, transactions FROM daily_summary")
                .fetch_all(store.readers())
                .await?;
        Ok(stored_model(balances, days))
    }
}

#[async_trait]
impl SqliteProjection for SqliteBalances {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "balances"
    }

    async fn handle(
        &self,
        tx: &mut SqliteConnection,
        event: AccountEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let Some(change) = change(&event, record) else {
            return Ok(());
        };
        let (deposited, withdrawn) = (
            i64::try_from(change.deposited)?,
            i64::try_from(change.withdrawn)?,
        );
        sqlx::query(
            "INSERT INTO balances (account, balance) VALUES (?1, ?2)
             ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance",
        )
        .bind(&change.account)
        .bind(deposited - withdrawn)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO daily_summary (day, deposited, withdrawn, transactions) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (day) DO UPDATE SET deposited = deposited + excluded.deposited,
                 withdrawn = withdrawn + excluded.withdrawn, transactions = transactions + 1",
        )
        .bind(change.day)
        .bind(deposited)
        .bind(withdrawn)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn reset(&self, tx: &mut SqliteConnection) -> Result<(), HandlerError> {
        sqlx::query("DELETE FROM balances")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM daily_summary").execute(tx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use es_core::projection::ProjectionOptions;
    use es_core::{Metadata, ProjectionRunner, Repository};
    use es_memory::InMemoryEventStore;

    use super::*;
    use crate::bank::{Account, AccountCommand};

    #[tokio::test]
    async fn keeps_balances_and_daily_totals_and_rebuilds_the_same() {
        let store = InMemoryEventStore::new();
        let balances = MemoryBalances::default();
        let running = ProjectionRunner::new(store.clone())
            .with_projection(
                balances.clone(),
                store.clone(),
                ProjectionOptions::default(),
            )
            .start();
        let accounts = Repository::<Account, _>::new(store);
        accounts
            .execute(
                "a",
                &AccountCommand::Open { owner: "A".into() },
                Metadata::new(),
            )
            .await
            .unwrap();
        accounts
            .execute(
                "a",
                &AccountCommand::Deposit { amount: 500 },
                Metadata::new(),
            )
            .await
            .unwrap();
        let last = accounts
            .execute(
                "a",
                &AccountCommand::Withdraw { amount: 200 },
                Metadata::new(),
            )
            .await
            .unwrap();
        let at = last.append.unwrap().last_position;
        running
            .wait_for("balances", at, Duration::from_secs(10))
            .await
            .unwrap();
        let model = balances.snapshot();
        assert_eq!(model.balances["account-a"], 300);
        let day = model.days.values().next().unwrap();
        assert_eq!(
            (day.deposited, day.withdrawn, day.transactions),
            (500, 200, 2)
        );

        running.rebuild("balances").await.unwrap();
        running
            .wait_for("balances", at, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(balances.snapshot(), model);
        running.shutdown().await;
    }
}
