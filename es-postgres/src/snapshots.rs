//! Snapshots in the `snapshots` table.

use async_trait::async_trait;
use es_core::aggregate::{Snapshot, SnapshotStore};
use es_core::backend::validate_snapshot;
use es_core::{StoreError, StreamId, Version};
use sqlx::Row;

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::bind_half;
use crate::schema::SchemaName;

#[async_trait]
impl SnapshotStore for PgEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_snapshot(&snapshot)?;
        sqlx::query(&self.inner.sql.snapshots.save)
            .bind(snapshot.stream_id.as_str())
            .bind(&snapshot.snapshot_type)
            .bind(i32::try_from(snapshot.schema_version).unwrap_or(i32::MAX))
            .bind(bind_half(snapshot.version.get()))
            .bind(&snapshot.state)
            .execute(&self.inner.pool)
            .await
            .map_err(backend("save_snapshot"))?;
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        snapshot_type: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row = crate::error::retrying(&self.inner.pool, || {
            sqlx::query(&self.inner.sql.snapshots.load)
                .bind(stream.as_str())
                .bind(snapshot_type)
                .fetch_optional(&self.inner.pool)
        })
        .await
        .map_err(backend("load_snapshot"))?;
        let Some(row) = row else { return Ok(None) };
        let schema_version: i32 = row
            .try_get("schema_version")
            .map_err(backend("load_snapshot"))?;
        let version: i64 = row
            .try_get("stream_version")
            .map_err(backend("load_snapshot"))?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            snapshot_type: snapshot_type.to_owned(),
            schema_version: u32::try_from(schema_version).unwrap_or_default(),
            version: Version::new(u64::try_from(version).unwrap_or_default()),
            state: row.try_get("state").map_err(backend("load_snapshot"))?,
        }))
    }
}

/// The snapshot statements.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotSql {
    pub(crate) save: String,
    pub(crate) load: String,
}

impl SnapshotSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        Self {
            save: format!(
                "INSERT INTO {s}.snapshots (stream_id, snapshot_type, schema_version, stream_version, state) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (stream_id, snapshot_type) DO UPDATE \
             SET schema_version = EXCLUDED.schema_version, stream_version = EXCLUDED.stream_version, \
                 state = EXCLUDED.state, created_at = now() \
             WHERE snapshots.stream_version < EXCLUDED.stream_version \
                OR snapshots.schema_version <> EXCLUDED.schema_version"
            ),
            load: format!(
                "SELECT schema_version, stream_version, state FROM {s}.snapshots \
             WHERE stream_id = $1 AND snapshot_type = $2"
            ),
        }
    }
}
