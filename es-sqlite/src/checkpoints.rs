//! Checkpoints in the `checkpoints` table, moved by compare-and-set.

use async_trait::async_trait;
use chrono::Utc;
use es_core::projection::CheckpointStore;
use es_core::{Position, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, position_of};
use crate::transaction::Failure;

/// The checkpoint of `name` as `conn` sees it.
pub(crate) async fn load(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<Option<Position>, sqlx::Error> {
    let stored: Option<(i64, i64)> =
        sqlx::query_as("SELECT commit_position, global_position FROM checkpoints WHERE name = ?1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(stored.map(|(commit, prepare)| {
        Position::new(
            u64::try_from(commit).unwrap_or(0),
            u64::try_from(prepare).unwrap_or(0),
        )
    }))
}

/// Moves `name` from `expected` to `to` inside the caller's write transaction, or refuses naming where it is.
pub(crate) async fn move_to(
    conn: &mut SqliteConnection,
    name: &str,
    expected: Option<Position>,
    to: Position,
) -> Result<(), Failure> {
    let actual = load(conn, name).await?;
    if actual != expected {
        return Err(Failure::Refused(StoreError::CheckpointConflict {
            name: name.to_owned(),
            expected,
            actual,
        }));
    }
    sqlx::query(
        "INSERT INTO checkpoints (name, commit_position, global_position, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET commit_position = excluded.commit_position, \
           global_position = excluded.global_position, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(i64::try_from(to.commit).unwrap_or(i64::MAX))
    .bind(position_of(to))
    .bind(micros(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl CheckpointStore for SqliteEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let mut conn = self
            .readers()
            .acquire()
            .await
            .map_err(backend("load_checkpoint"))?;
        load(&mut conn, name)
            .await
            .map_err(backend("load_checkpoint"))
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Position>,
        position: Position,
    ) -> Result<(), StoreError> {
        self.in_write("save_checkpoint", async |conn| {
            move_to(conn, name, expected, position).await
        })
        .await
    }

    async fn delete_checkpoint(&self, name: &str) -> Result<(), StoreError> {
        self.in_write("delete_checkpoint", async |conn| {
            sqlx::query("DELETE FROM checkpoints WHERE name = ?1")
                .bind(name)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
        .await
    }
}
