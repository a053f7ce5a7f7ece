//! The bank's public events and a consumer of them, for the relay tests.

use async_trait::async_trait;
use es_core::RecordedEvent;
use es_core::integration::{CloudEvent, IntegrationEvent, IntegrationHandler, IntegrationMapper};
use es_core::projection::HandlerError;
use es_postgres::{PgEventStore, PgTransaction};
use examples::bank::AccountEvent;

/// Publishes every account event as `bank.account.<what>.v1`.
#[derive(Debug)]
pub struct PublicAccountEvents;

impl IntegrationMapper for PublicAccountEvents {
    type Event = AccountEvent;

    fn map(
        &self,
        event: &AccountEvent,
        _: &RecordedEvent,
    ) -> Result<Option<IntegrationEvent>, HandlerError> {
        let (what, data) = match event {
            AccountEvent::Opened { owner } => ("opened", serde_json::json!({ "owner": owner })),
            AccountEvent::Deposited { amount } => {
                ("deposited", serde_json::json!({ "amount": amount }))
            }
            AccountEvent::Withdrawn { amount } => {
                ("withdrawn", serde_json::json!({ "amount": amount }))
            }
            AccountEvent::Closed => ("closed", serde_json::json!({})),
        };
        Ok(Some(IntegrationEvent::new(
            format!("bank.account.{what}.v1"),
            data,
        )))
    }
}

/// Another service's read model: every event it applied, in order, in its own table.
#[derive(Clone, Debug)]
pub struct ConsumerLog {
    table: String,
}

impl ConsumerLog {
    /// The log table `consumer_log` in `store`'s schema, created.
    pub async fn create(store: &PgEventStore) -> Self {
        let table = format!("\"{}\".consumer_log", store.schema());
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (seq bigserial PRIMARY KEY, stream text NOT NULL, \
             sequence bigint NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL)"
        ))
        .execute(store.pool())
        .await
        .expect("create consumer_log");
        Self { table }
    }

    /// (stream, sequence, event id) in the order applied.
    pub async fn entries(&self, store: &PgEventStore) -> Vec<(String, i64, uuid::Uuid)> {
        sqlx::query_as(&format!(
            "SELECT stream, sequence, event_id FROM {} ORDER BY seq",
            self.table
        ))
        .fetch_all(store.pool())
        .await
        .expect("read consumer_log")
    }
}

#[async_trait]
impl IntegrationHandler<PgEventStore> for ConsumerLog {
    async fn handle(&self, tx: &mut PgTransaction, event: &CloudEvent) -> Result<(), HandlerError> {
        sqlx::query(&format!(
            "INSERT INTO {} (stream, sequence, event_id, event_type) VALUES ($1, $2, $3, $4)",
            self.table
        ))
        .bind(&event.subject)
        .bind(i64::try_from(event.sequence)?)
        .bind(event.id.as_uuid())
        .bind(&event.event_type)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// [`ConsumerLog`] in a SQLite file: another service on SQLite.
#[derive(Clone, Debug)]
pub struct SqliteConsumerLog;

impl SqliteConsumerLog {
    /// The log table in `store`'s file, created.
    pub async fn create(store: &es_sqlite::SqliteEventStore) -> Self {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS consumer_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, \
             sequence INTEGER NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL)",
        )
        .execute(store.writer())
        .await
        .expect("create consumer_log");
        Self
    }

    /// (stream, sequence, event id) in the order applied.
    pub async fn entries(
        &self,
        store: &es_sqlite::SqliteEventStore,
    ) -> Vec<(String, i64, uuid::Uuid)> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT stream, sequence, event_id FROM consumer_log ORDER BY seq")
                .fetch_all(store.readers())
                .await
                .expect("read consumer_log");
        rows.into_iter()
            .map(|(stream, sequence, id)| (stream, sequence, id.parse().expect("an event id")))
            .collect()
    }
}

#[async_trait]
impl IntegrationHandler<es_sqlite::SqliteEventStore> for SqliteConsumerLog {
    async fn handle(
        &self,
        tx: &mut es_sqlite::SqliteTransaction,
        event: &CloudEvent,
    ) -> Result<(), HandlerError> {
        sqlx::query(
            "INSERT INTO consumer_log (stream, sequence, event_id, event_type) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&event.subject)
        .bind(i64::try_from(event.sequence)?)
        .bind(event.id.to_string())
        .bind(&event.event_type)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
