//! Dead letters in the `dead_letters` table.

use async_trait::async_trait;
use es_core::projection::{DeadLetter, DeadLetterStore};
use es_core::{EventId, StoreError};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, position, position_of, time, version};

type LetterRow = (Uuid, i64, String, i64, String, String, i64, i64);

/// Parks `letter` in the caller's write transaction.
pub(crate) async fn park(
    conn: &mut SqliteConnection,
    letter: &DeadLetter,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dead_letters (projection, event_id, global_position, stream_id, stream_version, event_type, \
         error, attempts, failed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (projection, event_id) DO UPDATE SET error = excluded.error, attempts = excluded.attempts, \
           failed_at = excluded.failed_at",
    )
    .bind(&letter.projection)
    .bind(letter.event_id.as_uuid())
    .bind(position_of(letter.position))
    .bind(&letter.stream_id)
    .bind(i64::try_from(letter.version.get()).unwrap_or(i64::MAX))
    .bind(&letter.event_type)
    .bind(&letter.error)
    .bind(i64::from(letter.attempts))
    .bind(micros(letter.failed_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes one in the caller's write transaction.
pub(crate) async fn remove(
    conn: &mut SqliteConnection,
    projection: &str,
    event_id: EventId,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM dead_letters WHERE projection = ?1 AND event_id = ?2")
        .bind(projection)
        .bind(event_id.as_uuid())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The letters of `projection`, in position order.
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    projection: &str,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows: Vec<LetterRow> = sqlx::query_as(
        "SELECT event_id, global_position, stream_id, stream_version, event_type, error, attempts, failed_at \
         FROM dead_letters WHERE projection = ?1 ORDER BY global_position",
    )
    .bind(projection)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(event_id, global, stream_id, v, event_type, error, attempts, failed_at)| DeadLetter {
                projection: projection.to_owned(),
                position: position(global),
                event_id: EventId::from_uuid(event_id),
                stream_id,
                version: version(v),
                event_type,
                error,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                failed_at: time(failed_at),
            },
        )
        .collect())
}

#[async_trait]
impl DeadLetterStore for SqliteEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<(), StoreError> {
        self.in_write("park", async |conn| {
            let letter = &letter;
            Ok(park(conn, letter).await?)
        })
        .await
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let mut conn = self
            .readers()
            .acquire()
            .await
            .map_err(backend("dead_letters"))?;
        list(&mut conn, projection)
            .await
            .map_err(backend("dead_letters"))
    }

    async fn remove_dead_letter(
        &self,
        projection: &str,
        event_id: EventId,
    ) -> Result<(), StoreError> {
        self.in_write("remove_dead_letter", async |conn| {
            Ok(remove(conn, projection, event_id).await?)
        })
        .await
    }
}
