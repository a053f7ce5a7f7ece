//! Document projections' documents in the `documents` table: one `UNNEST` upsert and one delete per batch, in the
//! transaction that moves the checkpoint (compare-and-set).

use async_trait::async_trait;
use es_core::projection::document::{
    DocumentChange, DocumentStore, Filter, valid_field, version_key,
};
use es_core::{Position, StoreError};
use serde_json::Value;

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::bind_half;
use crate::schema::SchemaName;

/// The document statements.
#[derive(Clone, Debug)]
pub(crate) struct DocumentSql {
    schema: String,
    load: String,
    upsert: String,
    delete: String,
    reset: String,
    list: String,
    register: String,
    live: String,
    retire: [String; 3],
    switch: String,
}

impl DocumentSql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        // A projection's name reads its live version; a version key, that version.
        let key = format!(
            "coalesce((SELECT live_key FROM {s}.document_versions WHERE projection = $1), $1)"
        );
        // The other versions of projection $1: the name itself and `name@v…`, but not the key $2.
        let others = |column: &str| {
            format!(
                "({column} = $1 OR left({column}, length($1) + 2) = $1 || '@v') AND {column} <> $2"
            )
        };
        Self {
            load: format!(
                "SELECT id, document FROM {s}.documents WHERE projection = {key} AND id = ANY($2)"
            ),
            upsert: format!(
                "INSERT INTO {s}.documents (projection, id, document) \
                 SELECT $1, d.id, d.document FROM unnest($2::text[], $3::jsonb[]) AS d(id, document) \
                 ON CONFLICT (projection, id) DO UPDATE SET document = EXCLUDED.document, updated_at = now()"
            ),
            delete: format!("DELETE FROM {s}.documents WHERE projection = $1 AND id = ANY($2)"),
            reset: format!("DELETE FROM {s}.documents WHERE projection = $1"),
            list: format!(
                "SELECT id, document FROM {s}.documents WHERE projection = {key} \
                 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3"
            ),
            register: format!(
                "INSERT INTO {s}.document_versions (projection, version, live_key) VALUES ($1, $2, $3) \
                 ON CONFLICT (projection) DO NOTHING"
            ),
            live: format!("SELECT version FROM {s}.document_versions WHERE projection = $1"),
            // Checkpoints first: their row locks wait for a retired version's batch in flight, whose documents the
            // next statement then sees and deletes.
            retire: [
                format!("DELETE FROM {s}.checkpoints WHERE {}", others("name")),
                format!(
                    "DELETE FROM {s}.dead_letters WHERE {}",
                    others("projection")
                ),
                format!("DELETE FROM {s}.documents WHERE {}", others("projection")),
            ],
            switch: format!(
                "INSERT INTO {s}.document_versions (projection, version, live_key) VALUES ($1, $2, $3) \
                 ON CONFLICT (projection) DO UPDATE SET version = EXCLUDED.version, live_key = EXCLUDED.live_key"
            ),
            schema: s,
        }
    }

    /// The index on `field` (validated by the caller: it cannot carry SQL).
    fn index(&self, field: &str) -> String {
        let s = &self.schema;
        format!(
            "CREATE INDEX IF NOT EXISTS documents_by_{field} ON {s}.documents (projection, (document -> '{field}'))"
        )
    }

    /// The page of documents whose `field` (validated by the caller) equals `$4`.
    fn list_by(&self, field: &str) -> String {
        let s = &self.schema;
        format!(
            "SELECT id, document FROM {s}.documents \
             WHERE projection = coalesce((SELECT live_key FROM {s}.document_versions WHERE projection = $1), $1) \
             AND document -> '{field}' = $4 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3"
        )
    }
}

fn invalid(operation: &'static str, field: &str) -> StoreError {
    StoreError::Backend {
        operation,
        source: format!("`{field}` is not a valid document field name").into(),
    }
}

impl PgEventStore {
    /// Moves `projection`'s checkpoint from `from` to `to` inside `tx`; a conflict when it is not at `from`.
    async fn move_checkpoint_in(
        &self,
        tx: &mut sqlx::PgConnection,
        projection: &str,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), StoreError> {
        let sql = &self.inner.sql.checkpoints;
        let query = match from {
            None => sqlx::query(&sql.create)
                .bind(projection)
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
            Some(current) => sqlx::query(&sql.move_to)
                .bind(projection)
                .bind(bind_half(current.commit))
                .bind(bind_half(current.prepare))
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
        };
        let done = query
            .execute(&mut *tx)
            .await
            .map_err(backend("commit documents"))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(StoreError::CheckpointConflict {
            name: projection.to_owned(),
            expected: from,
            actual: es_core::projection::CheckpointStore::load_checkpoint(self, projection).await?,
        })
    }
}

#[async_trait]
impl DocumentStore for PgEventStore {
    async fn prepare_documents(&self, _: &str, fields: &[&str]) -> Result<(), StoreError> {
        for field in fields {
            if !valid_field(field) {
                return Err(invalid("prepare documents", field));
            }
            match sqlx::query(&self.inner.sql.documents.index(field))
                .execute(self.pool())
                .await
            {
                Ok(_) => {}
                // Two processes creating the same index at once: the other one's is as good.
                Err(sqlx::Error::Database(error))
                    if matches!(error.code().as_deref(), Some("23505" | "42P07")) => {}
                Err(error) => return Err(backend("prepare documents")(error)),
            }
        }
        Ok(())
    }

    async fn load_documents(
        &self,
        projection: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Value)>, StoreError> {
        crate::error::retrying(self.pool(), || {
            sqlx::query_as(&self.inner.sql.documents.load)
                .bind(projection)
                .bind(ids)
                .fetch_all(self.pool())
        })
        .await
        .map_err(backend("load documents"))
    }

    async fn commit_documents(
        &self,
        projection: &str,
        changes: &[DocumentChange],
        checkpoint: Option<(Option<Position>, Position)>,
    ) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        let mut documents = Vec::new();
        let mut deleted = Vec::new();
        for change in changes {
            match &change.document {
                Some(document) => {
                    ids.push(change.id.as_str());
                    documents.push(document);
                }
                None => deleted.push(change.id.as_str()),
            }
        }
        let sql = &self.inner.sql.documents;
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(backend("commit documents"))?;
        if let Some((from, to)) = checkpoint {
            self.move_checkpoint_in(&mut tx, projection, from, to)
                .await?;
        }
        if !ids.is_empty() {
            sqlx::query(&sql.upsert)
                .bind(projection)
                .bind(&ids)
                .bind(&documents)
                .execute(&mut *tx)
                .await
                .map_err(backend("commit documents"))?;
        }
        if !deleted.is_empty() {
            sqlx::query(&sql.delete)
                .bind(projection)
                .bind(&deleted)
                .execute(&mut *tx)
                .await
                .map_err(backend("commit documents"))?;
        }
        tx.commit().await.map_err(backend("commit documents"))
    }

    async fn reset_documents(&self, projection: &str) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(backend("reset documents"))?;
        for statement in [
            &self.inner.sql.documents.reset,
            &self.inner.sql.checkpoints.delete,
        ] {
            sqlx::query(statement)
                .bind(projection)
                .execute(&mut *tx)
                .await
                .map_err(backend("reset documents"))?;
        }
        tx.commit().await.map_err(backend("reset documents"))
    }

    async fn live_documents(&self, projection: &str, version: u32) -> Result<u32, StoreError> {
        let sql = &self.inner.sql.documents;
        let key = version_key(projection, version);
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        sqlx::query(&sql.register)
            .bind(projection)
            .bind(version)
            .bind(&key)
            .execute(self.pool())
            .await
            .map_err(backend("register documents"))?;
        let live: i32 = sqlx::query_scalar(&sql.live)
            .bind(projection)
            .fetch_one(self.pool())
            .await
            .map_err(backend("register documents"))?;
        Ok(u32::try_from(live).unwrap_or(1))
    }

    async fn switch_documents(&self, projection: &str, version: u32) -> Result<(), StoreError> {
        let sql = &self.inner.sql.documents;
        let key = version_key(projection, version);
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(backend("switch documents"))?;
        for statement in &sql.retire {
            sqlx::query(statement)
                .bind(projection)
                .bind(&key)
                .execute(&mut *tx)
                .await
                .map_err(backend("switch documents"))?;
        }
        sqlx::query(&sql.switch)
            .bind(projection)
            .bind(i32::try_from(version).unwrap_or(i32::MAX))
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(backend("switch documents"))?;
        tx.commit().await.map_err(backend("switch documents"))
    }

    async fn list_documents(
        &self,
        projection: &str,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = &self.inner.sql.documents;
        let statement = match filter.equals() {
            None => sql.list.clone(),
            Some((field, _)) if !valid_field(field) => {
                return Err(invalid("list documents", field));
            }
            Some((field, _)) => sql.list_by(field),
        };
        crate::error::retrying(self.pool(), || {
            let query = sqlx::query_as(&statement)
                .bind(projection)
                .bind(after)
                .bind(limit);
            match filter.equals() {
                Some((_, value)) => query.bind(value).fetch_all(self.pool()),
                None => query.fetch_all(self.pool()),
            }
        })
        .await
        .map_err(backend("list documents"))
    }
}
