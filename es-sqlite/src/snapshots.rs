//! Snapshots in the `snapshots` table.

use async_trait::async_trait;
use chrono::Utc;
use es_core::aggregate::{Snapshot, SnapshotStore};
use es_core::backend::validate_snapshot;
use es_core::{StoreError, StreamId};

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{micros, version};

#[async_trait]
impl SnapshotStore for SqliteEventStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_snapshot(&snapshot)?;
        let state = serde_json::to_string(&snapshot.state).map_err(|e| StoreError::Backend {
            operation: "save_snapshot",
            source: Box::new(e),
        })?;
        self.in_write("save_snapshot", async |conn| {
            let (snapshot, state) = (&snapshot, &state);
            // A newer snapshot of the same schema version is kept; another schema version replaces it.
            sqlx::query(
                    "INSERT INTO snapshots (stream_id, snapshot_type, schema_version, stream_version, state, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (stream_id, snapshot_type) DO UPDATE SET schema_version = excluded.schema_version, \
                       stream_version = excluded.stream_version, state = excluded.state, created_at = excluded.created_at \
                     WHERE snapshots.schema_version <> excluded.schema_version \
                        OR snapshots.stream_version < excluded.stream_version",
                )
                .bind(snapshot.stream_id.as_str())
                .bind(&snapshot.snapshot_type)
                .bind(i64::from(snapshot.schema_version))
                .bind(i64::try_from(snapshot.version.get()).unwrap_or(i64::MAX))
                .bind(state)
                .bind(micros(Utc::now()))
                .execute(&mut *conn)
                .await?;
            Ok(())
        }).await
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        snapshot_type: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT schema_version, stream_version, state FROM snapshots WHERE stream_id = ?1 AND snapshot_type = ?2",
        )
        .bind(stream.as_str())
        .bind(snapshot_type)
        .fetch_optional(self.readers())
        .await
        .map_err(backend("load_snapshot"))?;
        let Some((schema_version, stream_version, state)) = row else {
            return Ok(None);
        };
        // A snapshot that does not read back is ignored: the stream is folded from the start instead.
        let Ok(state) = serde_json::from_str(&state) else {
            tracing::warn!(stream = %stream, snapshot_type, "a stored snapshot is not JSON; ignoring it");
            return Ok(None);
        };
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            snapshot_type: snapshot_type.to_owned(),
            schema_version: u32::try_from(schema_version).unwrap_or(0),
            version: version(stream_version),
            state,
        }))
    }
}
