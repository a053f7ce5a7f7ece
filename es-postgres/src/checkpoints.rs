//! Checkpoints in the `checkpoints` table, moved by compare-and-set.

use async_trait::async_trait;
use es_core::projection::CheckpointStore;
use es_core::{Position, StoreError};

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::{bind_half, position};
use crate::schema::SchemaName;

#[async_trait]
impl CheckpointStore for PgEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let row: Option<(i64, i64)> = crate::error::retrying(&self.inner.pool, || {
            sqlx::query_as(&self.inner.sql.checkpoints.load)
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
            None => sqlx::query(&self.inner.sql.checkpoints.create)
                .bind(name)
                .bind(bind_half(next.commit))
                .bind(bind_half(next.prepare)),
            Some(current) => sqlx::query(&self.inner.sql.checkpoints.move_to)
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
        sqlx::query(&self.inner.sql.checkpoints.delete)
            .bind(name)
            .execute(&self.inner.pool)
            .await
            .map_err(backend("delete_checkpoint"))?;
        Ok(())
    }
}

/// The checkpoint statements.
#[derive(Clone, Debug)]
pub(crate) struct CheckpointSql {
    pub(crate) load: String,
    pub(crate) create: String,
    pub(crate) move_to: String,
    pub(crate) delete: String,
}

impl CheckpointSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            load: format!(
                "SELECT transaction_id::text::bigint, global_position FROM {s}.checkpoints WHERE name = $1"
            ),
            create: format!(
                "INSERT INTO {s}.checkpoints (name, transaction_id, global_position) \
             VALUES ($1, $2::bigint::text::xid8, $3) ON CONFLICT (name) DO NOTHING"
            ),
            move_to: format!(
                "UPDATE {s}.checkpoints \
             SET transaction_id = $4::bigint::text::xid8, global_position = $5, updated_at = now() \
             WHERE name = $1 AND (transaction_id, global_position) = ($2::bigint::text::xid8, $3)"
            ),
            delete: format!("DELETE FROM {s}.checkpoints WHERE name = $1"),
        }
    }
}
