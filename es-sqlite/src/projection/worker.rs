//! [`SqliteProjectionWorker`]: a [`SqliteProjection`] run exactly once per event, under the lease.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use es_core::backend::{
    Acquired, ApplyError, BatchError, ProjectionWorker, WorkerError, describe, rebuild_allowed,
    reset_allowed, wants,
};
use es_core::projection::{
    CheckpointStore, DeadLetter, DeadLetterStore, Holder, ProjectionOptions,
};
use es_core::store::FeedFilter;
use es_core::{Position, RecordedEvent, StoreError};
use sqlx::SqliteConnection;

use super::SqliteProjection;
use super::lease::renew;
use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::micros;
use crate::transaction::Failure;
use crate::{checkpoints, dead_letters};

/// Runs a [`SqliteProjection`] for a [`ProjectionRunner`](es_core::ProjectionRunner): each batch, its read-model
/// writes and the checkpoint's compare-and-set in one `BEGIN IMMEDIATE` transaction. One process at a time runs
/// it: the active worker holds a lease in the file (10 s by default, renewed by each batch and every third of it
/// when idle); the others stand by and take over when the lease runs out. A batch holds the file's write lock while
/// it runs: keep batches short when appends must stay fast.
#[derive(Debug)]
pub struct SqliteProjectionWorker<P> {
    store: SqliteEventStore,
    projection: P,
    options: ProjectionOptions,
    name: String,
    owner: String,
    lease: Duration,
    standby_poll: Duration,
}

impl<P: SqliteProjection> SqliteProjectionWorker<P> {
    /// A worker for `projection` on `store`'s file.
    pub fn new(store: &SqliteEventStore, projection: P, options: ProjectionOptions) -> Self {
        let name = projection.name().to_owned();
        Self {
            store: store.clone(),
            projection,
            options,
            name,
            owner: format!(
                "pid {} ({})",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            lease: Duration::from_secs(10),
            standby_poll: Duration::from_secs(1),
        }
    }

    /// How long the lease lasts without a renewal (10 s by default, at least 1 s): how soon a standby takes over
    /// from a process that died or hangs.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// How often a standby tries to take the lease (1 s by default).
    pub fn standby_poll(mut self, poll: Duration) -> Self {
        self.standby_poll = poll;
        self
    }

    fn expires(&self) -> i64 {
        micros(Utc::now()) + i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX / 2)
    }

    fn worker_error(&self, failure: Failure, expected: Option<Position>) -> WorkerError {
        match failure {
            Failure::Refused(StoreError::CheckpointConflict { actual, .. }) => {
                WorkerError::Fenced {
                    projection: self.name.clone(),
                    expected,
                    actual,
                }
            }
            Failure::Refused(error) => WorkerError::Store(error),
            Failure::Db(error) => WorkerError::Store(backend("projection batch")(error)),
            Failure::Lost(error) => WorkerError::Lost {
                projection: self.name.clone(),
                error,
            },
            Failure::Handler(batch) => WorkerError::Other {
                projection: self.name.clone(),
                error: batch.error,
            },
            Failure::Replay(error) => error,
        }
    }

    fn apply_error(&self, failure: Failure, expected: Option<Position>) -> ApplyError {
        match failure {
            Failure::Handler(batch) => ApplyError::Handler(batch),
            other => ApplyError::Worker(self.worker_error(other, expected)),
        }
    }
}

/// Decodes and handles `event` on `conn`, as event `index` of its batch.
async fn handle_one<P: SqliteProjection>(
    projection: &P,
    conn: &mut SqliteConnection,
    index: usize,
    event: &RecordedEvent,
) -> Result<(), Failure> {
    let handler = |(error, transient): (String, bool)| {
        Failure::Handler(BatchError {
            index,
            error,
            kept_before: false,
            transient,
            attempts: 1,
        })
    };
    let typed = event
        .decode::<P::Event>()
        .map_err(|e| handler((e.to_string(), false)))?;
    projection
        .handle(conn, typed, event)
        .await
        .map_err(|e| handler(describe(&e)))
}

#[async_trait]
impl<P: SqliteProjection> ProjectionWorker for SqliteProjectionWorker<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> &ProjectionOptions {
        &self.options
    }

    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
        let (name, owner, expires) = (self.name.as_str(), self.owner.as_str(), self.expires());
        let won: Option<String> = self.store.in_write("take a projection lease", async |conn| {
            Ok(sqlx::query_scalar(
                        "INSERT INTO projection_leases (projection, owner, expires_at) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (projection) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                         WHERE projection_leases.owner = excluded.owner OR projection_leases.expires_at <= ?4 \
                         RETURNING owner",
                    )
                    .bind(name)
                    .bind(owner)
                    .bind(expires)
                    .bind(micros(Utc::now()))
                    .fetch_optional(&mut *conn)
                    .await?)
        }).await?;
        if won.is_some() {
            tracing::info!(projection = %self.name, owner = %self.owner, "became the active instance");
            return Ok(Acquired::Active);
        }
        let holder: Option<String> =
            sqlx::query_scalar("SELECT owner FROM projection_leases WHERE projection = ?1")
                .bind(&self.name)
                .fetch_optional(self.store.readers())
                .await
                .map_err(|e| WorkerError::Store(backend("read a projection lease")(e)))?;
        Ok(Acquired::Standby {
            holder: holder.map(|owner| Holder {
                application_name: Some(owner),
                ..Holder::default()
            }),
            retry_in: self.standby_poll,
        })
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(self.lease / 3)
    }

    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        let (name, owner, expires) = (self.name.as_str(), self.owner.as_str(), self.expires());
        let result = self
            .store
            .in_transaction(async |conn| renew(conn, name, owner, expires).await)
            .await;
        result.map_err(|failure| self.worker_error(failure, None))
    }

    async fn release(&mut self) {
        let (name, owner) = (self.name.as_str(), self.owner.as_str());
        let released = self
            .store
            .in_write("release a projection lease", async |conn| {
                sqlx::query("DELETE FROM projection_leases WHERE projection = ?1 AND owner = ?2")
                    .bind(name)
                    .bind(owner)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
            .await;
        if let Err(error) = released {
            tracing::warn!(projection = %self.name, %error, "cannot release the lease; it runs out instead");
        }
    }

    fn feed_filter(&self) -> FeedFilter {
        FeedFilter::of::<P::Event>(self.projection.categories())
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        wants::<P::Event>(self.projection.categories(), stream, event_type)
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        Ok(CheckpointStore::load_checkpoint(&self.store, &self.name).await?)
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError> {
        let (name, owner, projection) = (self.name.as_str(), self.owner.as_str(), &self.projection);
        let expires = self.expires();
        let result = self
            .store
            .in_transaction(async |conn| {
                renew(conn, name, owner, expires).await?;
                for (index, event) in events.iter().enumerate() {
                    handle_one(projection, conn, index, event).await?;
                }
                checkpoints::move_to(conn, name, from, to).await
            })
            .await;
        result.map_err(|failure| self.apply_error(failure, from))
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let (name, owner, letter) = (self.name.as_str(), self.owner.as_str(), &letter);
        let expires = self.expires();
        let result = self
            .store
            .in_transaction(async |conn| {
                renew(conn, name, owner, expires).await?;
                dead_letters::park(conn, letter).await?;
                checkpoints::move_to(conn, name, from, letter.position).await
            })
            .await;
        result.map_err(|failure| self.worker_error(failure, from))
    }

    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        let (name, owner, projection) = (self.name.as_str(), self.owner.as_str(), &self.projection);
        let expires = self.expires();
        let idempotent = projection.idempotent();
        if let Some(to) = to {
            reset_allowed(name, from, to, idempotent)?;
        }
        let result = self
            .store
            .in_transaction(async |conn| {
                renew(conn, name, owner, expires).await?;
                match to {
                    Some(to) => checkpoints::move_to(conn, name, from, to).await,
                    None => {
                        let reset = projection.reset(conn).await;
                        rebuild_allowed(name, reset, idempotent).map_err(Failure::Replay)?;
                        sqlx::query("DELETE FROM checkpoints WHERE name = ?1")
                            .bind(name)
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    }
                }
            })
            .await;
        result.map_err(|failure| self.worker_error(failure, from))
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        Ok(DeadLetterStore::dead_letters(&self.store, &self.name).await?)
    }

    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError> {
        let (name, event_id) = (self.name.as_str(), letter.event_id);
        Ok(self
            .store
            .in_write("discard", async |conn| {
                Ok(dead_letters::remove(conn, name, event_id).await?)
            })
            .await?)
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let (name, owner, projection) = (self.name.as_str(), self.owner.as_str(), &self.projection);
        let expires = self.expires();
        let result = self
            .store
            .in_transaction(async |conn| {
                renew(conn, name, owner, expires).await?;
                handle_one(projection, conn, 0, event).await?;
                Ok(dead_letters::remove(conn, name, letter.event_id).await?)
            })
            .await;
        result.map_err(|failure| self.apply_error(failure, None))
    }

    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        let letter = &letter;
        Ok(self
            .store
            .in_write("replace a dead letter", async |conn| {
                Ok(dead_letters::park(conn, letter).await?)
            })
            .await?)
    }
}
