//! Dead letters in the `dead_letters` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use es_core::projection::{DeadLetter, DeadLetterStore};
use es_core::{EventId, StoreError, Version};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::{bind_half, position};
use crate::schema::SchemaName;
use crate::schema::Sql;

/// Parks `letter` on `conn` (inside the caller's transaction, when there is one).
pub(crate) async fn park(
    sql: &Sql,
    conn: &mut PgConnection,
    letter: &DeadLetter,
) -> Result<(), sqlx::Error> {
    sqlx::query(&sql.dead_letters.park)
        .bind(&letter.projection)
        .bind(letter.event_id.as_uuid())
        .bind(bind_half(letter.position.commit))
        .bind(bind_half(letter.position.prepare))
        .bind(&letter.stream_id)
        .bind(bind_half(letter.version.get()))
        .bind(&letter.event_type)
        .bind(&letter.error)
        .bind(i32::try_from(letter.attempts).unwrap_or(i32::MAX))
        .bind(letter.failed_at)
        .execute(conn)
        .await
        .map(drop)
}

type Row = (
    Uuid,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    i32,
    DateTime<Utc>,
);

/// The dead letters of `projection`, read on `conn`.
pub(crate) async fn list(
    sql: &Sql,
    conn: &mut PgConnection,
    projection: &str,
) -> Result<Vec<DeadLetter>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&sql.dead_letters.list)
        .bind(projection)
        .fetch_all(conn)
        .await
        .map_err(backend("dead_letters"))?;
    Ok(letters(projection, rows))
}

fn letters(projection: &str, rows: Vec<Row>) -> Vec<DeadLetter> {
    rows.into_iter()
        .map(
            |(event_id, tx, pos, stream, version, event_type, error, attempts, failed_at)| {
                DeadLetter {
                    projection: projection.to_owned(),
                    position: position(tx, pos),
                    event_id: EventId::from_uuid(event_id),
                    stream_id: stream,
                    version: Version::new(u64::try_from(version).unwrap_or_default()),
                    event_type,
                    error,
                    attempts: u32::try_from(attempts).unwrap_or_default(),
                    failed_at,
                }
            },
        )
        .collect()
}

#[async_trait]
impl DeadLetterStore for PgEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(backend("park"))?;
        park(&self.inner.sql, &mut conn, &letter)
            .await
            .map_err(backend("park"))
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let pool = &self.inner.pool;
        let rows: Vec<Row> = crate::error::retrying(pool, || {
            sqlx::query_as(&self.inner.sql.dead_letters.list)
                .bind(projection)
                .fetch_all(pool)
        })
        .await
        .map_err(backend("dead_letters"))?;
        Ok(letters(projection, rows))
    }

    async fn remove_dead_letter(
        &self,
        projection: &str,
        event_id: EventId,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.inner.sql.dead_letters.remove)
            .bind(projection)
            .bind(event_id.as_uuid())
            .execute(&self.inner.pool)
            .await
            .map_err(backend("remove_dead_letter"))?;
        Ok(())
    }
}

/// The dead-letter statements.
#[derive(Clone, Debug)]
pub(crate) struct DeadLetterSql {
    pub(crate) park: String,
    pub(crate) list: String,
    pub(crate) remove: String,
}

impl DeadLetterSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            park: format!(
                "INSERT INTO {s}.dead_letters (projection, event_id, transaction_id, global_position, stream_id, \
               stream_version, event_type, error, attempts, failed_at) \
             VALUES ($1, $2, $3::bigint::text::xid8, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (projection, event_id) DO UPDATE SET error = EXCLUDED.error, \
               attempts = EXCLUDED.attempts, failed_at = EXCLUDED.failed_at"
            ),
            list: format!(
                "SELECT event_id, transaction_id::text::bigint, global_position, stream_id, stream_version, \
               event_type, error, attempts, failed_at FROM {s}.dead_letters WHERE projection = $1 \
             ORDER BY dead_letters.transaction_id, dead_letters.global_position"
            ),
            remove: format!("DELETE FROM {s}.dead_letters WHERE projection = $1 AND event_id = $2"),
        }
    }
}
