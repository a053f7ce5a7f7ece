//! Document projections' documents in the file: one upsert and one delete statement per batch (the batch's
//! documents as one JSON array), in the transaction that moves the checkpoint.

use async_trait::async_trait;
use es_core::projection::document::{
    DocumentChange, DocumentStore, Filter, valid_field, version_key,
};
use es_core::{Position, StoreError};
use serde_json::Value;
use sqlx::Row;

use crate::SqliteEventStore;
use crate::checkpoints;
use crate::error::backend;

/// `value` as the JSON text a statement unpacks with `json_each`.
fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Backend {
        operation: "encode documents",
        source: error.into(),
    })
}

fn documents_of(rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<(String, Value)>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let id: String = row.try_get(0).map_err(backend("read documents"))?;
            let text: String = row.try_get(1).map_err(backend("read documents"))?;
            let document = serde_json::from_str(&text).map_err(|error| StoreError::Backend {
                operation: "read documents",
                source: format!(
                    "document `{id}` is not JSON: {}",
                    es_core::store::serde_summary(&error)
                )
                .into(),
            })?;
            Ok((id, document))
        })
        .collect()
}

#[async_trait]
impl DocumentStore for SqliteEventStore {
    async fn prepare_documents(&self, _: &str, fields: &[&str]) -> Result<(), StoreError> {
        for field in fields {
            if !valid_field(field) {
                return Err(StoreError::Backend {
                    operation: "prepare documents",
                    source: format!("`{field}` is not a valid document field name").into(),
                });
            }
            // Validated above: lower-case letters, digits and `_` only, so it cannot carry SQL.
            let sql = format!(
                "CREATE INDEX IF NOT EXISTS documents_by_{field} ON documents (projection, json_extract(document, '$.{field}'))"
            );
            self.in_write("prepare documents", async |conn| {
                sqlx::query(&sql).execute(&mut *conn).await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    async fn load_documents(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, document FROM documents WHERE projection = coalesce((SELECT live_key FROM document_versions WHERE projection = ?1), ?1) \
             AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(projection)
        .bind(json_text(&ids)?)
        .fetch_all(self.readers())
        .await
        .map_err(backend("load documents"))?;
        documents_of(rows)
    }

    async fn commit_documents(
        &self,
        projection: &str,
        changes: &[DocumentChange],
        checkpoint: Option<(Option<Position>, Position)>,
    ) -> Result<(), StoreError> {
        let (mut written, mut deleted) = (Vec::new(), Vec::new());
        for change in changes {
            match &change.document {
                Some(document) => written.push((change.id.as_str(), document)),
                None => deleted.push(change.id.as_str()),
            }
        }
        let (written, deleted) = (json_text(&written)?, json_text(&deleted)?);
        self.in_write("commit documents", async |conn| {
            if let Some((from, to)) = checkpoint {
                checkpoints::move_to(conn, projection, from, to).await?;
            }
            sqlx::query(
                "INSERT INTO documents (projection, id, document) \
                 SELECT ?1, json_extract(value, '$[0]'), json(json_extract(value, '$[1]')) FROM json_each(?2) WHERE true \
                 ON CONFLICT (projection, id) DO UPDATE SET document = excluded.document",
            )
            .bind(projection)
            .bind(&written)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM documents WHERE projection = ?1 AND id IN (SELECT value FROM json_each(?2))")
                .bind(projection)
                .bind(&deleted)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
        .await
    }

    async fn reset_documents(&self, projection: &str) -> Result<(), StoreError> {
        self.in_write("reset documents", async |conn| {
            sqlx::query("DELETE FROM documents WHERE projection = ?1")
                .bind(projection)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM checkpoints WHERE name = ?1")
                .bind(projection)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
        .await
    }

    async fn live_documents(&self, projection: &str, version: u32) -> Result<u32, StoreError> {
        let key = version_key(projection, version);
        self.in_write("register documents", async |conn| {
            sqlx::query(
                "INSERT INTO document_versions (projection, version, live_key) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (projection) DO NOTHING",
            )
            .bind(projection)
            .bind(version)
            .bind(&key)
            .execute(&mut *conn)
            .await?;
            let live: u32 =
                sqlx::query_scalar("SELECT version FROM document_versions WHERE projection = ?1")
                    .bind(projection)
                    .fetch_one(&mut *conn)
                    .await?;
            Ok(live)
        })
        .await
    }

    async fn switch_documents(&self, projection: &str, version: u32) -> Result<(), StoreError> {
        let key = version_key(projection, version);
        self.in_write("switch documents", async |conn| {
            // The other versions: the name itself and `name@v…`, but not this version's key.
            for statement in [
                "DELETE FROM checkpoints WHERE (name = ?1 OR substr(name, 1, length(?1) + 2) = ?1 || '@v') \
                 AND name <> ?2",
                "DELETE FROM dead_letters WHERE (projection = ?1 OR substr(projection, 1, length(?1) + 2) = ?1 || '@v') \
                 AND projection <> ?2",
                "DELETE FROM documents WHERE (projection = ?1 OR substr(projection, 1, length(?1) + 2) = ?1 || '@v') \
                 AND projection <> ?2",
            ] {
                sqlx::query(statement)
                    .bind(projection)
                    .bind(&key)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO document_versions (projection, version, live_key) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (projection) DO UPDATE SET version = excluded.version, live_key = excluded.live_key",
            )
            .bind(projection)
            .bind(version)
            .bind(&key)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
        .await
    }

    async fn list_documents(
        &self,
        projection: &str,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match filter.equals() {
            None => sqlx::query(
                "SELECT id, document FROM documents WHERE projection = coalesce((SELECT live_key FROM document_versions WHERE projection = ?1), ?1) AND (?2 IS NULL OR id > ?2) \
                 ORDER BY id LIMIT ?3",
            )
            .bind(projection)
            .bind(after)
            .bind(limit)
            .fetch_all(self.readers())
            .await,
            Some((field, value)) => {
                if !valid_field(field) {
                    return Err(StoreError::Backend {
                        operation: "list documents",
                        source: format!("`{field}` is not a valid document field name").into(),
                    });
                }
                // Validated: the field cannot carry SQL. Both sides are json_extract values, so strings, numbers
                // and booleans compare as SQLite stores them.
                let sql = format!(
                    "SELECT id, document FROM documents WHERE projection = coalesce((SELECT live_key FROM document_versions WHERE projection = ?1), ?1) \
                     AND json_extract(document, '$.{field}') = json_extract(?4, '$') \
                     AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3"
                );
                sqlx::query(&sql)
                    .bind(projection)
                    .bind(after)
                    .bind(limit)
                    .bind(json_text(value)?)
                    .fetch_all(self.readers())
                    .await
            }
        }
        .map_err(backend("list documents"))?;
        documents_of(rows)
    }
}
