//! Checkpoints in the `checkpoints` table, moved by compare-and-set.

use async_trait::async_trait;
use es_core::projection::CheckpointStore;
use es_core::{Position, StoreError};

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::{bind_half, position};

#[async_trait]
impl CheckpointStore for PgEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let row: Option<(i64, i64)> = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.load_checkpoint)
                .bind(name)
                .fetch_optional(&self.inner.pool)
        })
        .await
        .map_err(backend("load_checkpoint"))?;
        Ok(row.map(|(tx, pos)| position(tx, pos)))
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Position>,
        next: Position,
    ) -> Result<(), StoreError> {
        let query = match expected {
            None => sqlx::query(&self.inner.sql.create_checkpoint)
                .bind(name)
                .bind(bind_half(next.commit))
                .bind(bind_half(next.prepare)),
            Some(current) => sqlx::query(&self.inner.sql.move_checkpoint)
                .bind(name)
                .bind(bind_half(current.commit))
                .bind(bind_half(current.prepare))
                .bind(bind_half(next.commit))
                .bind(bind_half(next.prepare)),
        };
        let done = query
            .execute(&self.inner.pool)
            .await
            .map_err(backend("save_checkpoint"))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(StoreError::CheckpointConflict {
            name: name.to_owned(),
            expected,
            actual: self.load_checkpoint(name).await?,
        })
    }

    async fn delete_checkpoint(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query(&self.inner.sql.delete_checkpoint)
            .bind(name)
            .execute(&self.inner.pool)
            .await
            .map_err(backend("delete_checkpoint"))?;
        Ok(())
    }
}
