//! [`TransactionalBackend`] on SQLite: the lease in the file, `BEGIN IMMEDIATE` on the store's writer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use es_core::backend::{
    Acquired, TransactionalBackend, TxFailure, WorkerError, describe, owned_reset, wants,
};
use es_core::projection::{CheckpointStore, DeadLetter, DeadLetterStore, HandlerError, Holder};
use es_core::store::FeedFilter;
use es_core::{EventId, Position, RecordedEvent, StoreError};

use super::SqliteProjection;
use super::lease::renew;
use super::read_model::{ReadModel, SetUpError};
use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::micros;
use crate::transaction::{Failure, WriteTx};
use crate::{checkpoints, dead_letters};

/// A [`SqliteProjection`] under its lease, with the write transaction it has open.
#[derive(Debug)]
pub(crate) struct SqliteBackend<P> {
    pub(super) store: SqliteEventStore,
    pub(super) projection: P,
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) lease: Duration,
    pub(super) standby_poll: Duration,
    pub(super) tx: Option<WriteTx>,
    /// The declared read model, or why it is invalid.
    pub(super) model: Option<Result<ReadModel, String>>,
}

impl<P: SqliteProjection> SqliteBackend<P> {
    fn expires(&self) -> i64 {
        micros(Utc::now()) + i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX / 2)
    }

    fn fail(&self, failure: Failure) -> TxFailure {
        match failure {
            Failure::Refused(StoreError::CheckpointConflict { actual, .. }) => {
                TxFailure::Fenced(actual)
            }
            Failure::Refused(error) => TxFailure::Worker(WorkerError::Store(error)),
            Failure::Db(error) => {
                TxFailure::Worker(WorkerError::Store(backend("projection batch")(error)))
            }
            Failure::Lost(error) => TxFailure::Worker(WorkerError::Lost {
                projection: self.name.clone(),
                error,
            }),
        }
    }

    /// Creates or rebuilds the declared read model, once the lease is won.
    async fn set_up(&mut self) -> Result<(), WorkerError> {
        let invalid = |error| WorkerError::Other {
            projection: self.name.clone(),
            error,
        };
        let model = match &self.model {
            None => return Ok(()),
            Some(Err(error)) => return Err(invalid(error.clone())),
            Some(Ok(model)) => model,
        };
        let name = self.name.as_str();
        let set_up = self
            .store
            .in_transaction(async |conn| match model.set_up(conn, name).await {
                Ok(()) => Ok(Ok(())),
                Err(SetUpError::Invalid(error)) => Ok(Err(error)),
                Err(SetUpError::Db(error)) => Err(Failure::Db(error)),
            })
            .await;
        match set_up {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(invalid(error)),
            Err(failure) => Err(match self.fail(failure) {
                TxFailure::Worker(error) => error,
                _ => invalid("setting up the read model failed".to_owned()),
            }),
        }
    }

    /// The open transaction's connection.
    fn tx(&mut self) -> Result<&mut WriteTx, TxFailure> {
        self.tx.as_mut().ok_or_else(|| {
            TxFailure::Worker(WorkerError::NotActive {
                projection: self.name.clone(),
            })
        })
    }
}

#[async_trait]
impl<P: SqliteProjection> TransactionalBackend for SqliteBackend<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn feed_filter(&self) -> FeedFilter {
        FeedFilter::of::<P::Event>(self.projection.categories())
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        wants::<P::Event>(self.projection.categories(), stream, event_type)
    }

    fn idempotent(&self) -> bool {
        self.projection.idempotent()
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
            if let Err(error) = self.set_up().await {
                self.release().await;
                return Err(error);
            }
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
        result.map_err(|failure| match self.fail(failure) {
            TxFailure::Worker(error) => error,
            _ => WorkerError::NotActive {
                projection: self.name.clone(),
            },
        })
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

    async fn load_checkpoint(&mut self) -> Result<Option<Position>, TxFailure> {
        let loaded = CheckpointStore::load_checkpoint(&self.store, &self.name).await;
        Ok(loaded.map_err(WorkerError::Store)?)
    }

    async fn begin(&mut self) -> Result<(), TxFailure> {
        // A transaction left by a cancelled caller: dropping it rolls it back.
        self.tx = None;
        let mut tx = self.store.begin().await.map_err(|e| self.fail(e.into()))?;
        let (name, owner, expires) = (self.name.as_str(), self.owner.as_str(), self.expires());
        // The lease is renewed in the transaction's first statement: a worker paused past it commits nothing.
        renew(&mut tx, name, owner, expires)
            .await
            .map_err(|failure| self.fail(failure))?;
        self.tx = Some(tx);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), TxFailure> {
        let tx = self.tx.take().ok_or_else(|| {
            TxFailure::Worker(WorkerError::NotActive {
                projection: self.name.clone(),
            })
        })?;
        tx.commit().await.map_err(|e| self.fail(e.into()))
    }

    async fn rollback(&mut self) {
        if let Some(tx) = self.tx.take()
            && let Err(error) = tx.rollback().await
        {
            tracing::warn!(projection = %self.name, %error, "rolling back a batch failed; the next write rolls it back");
        }
    }

    async fn handle(&mut self, first: usize, events: &[RecordedEvent]) -> Result<(), TxFailure> {
        let mut batch = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let typed = event.decode::<P::Event>().map_err(|e| TxFailure::Handler {
                index: first + index,
                error: e.to_string(),
                transient: false,
            })?;
            batch.push((typed, event));
        }
        let tx = self.tx.as_mut().ok_or_else(|| {
            TxFailure::Worker(WorkerError::NotActive {
                projection: self.name.clone(),
            })
        })?;
        self.projection
            .handle_batch(tx, batch)
            .await
            .map_err(|error| match events.len() {
                // Given several events, the handler failed on one of them: which one, the worker finds out.
                1 => {
                    let (error, transient) = describe(&error);
                    TxFailure::Handler {
                        index: first,
                        error,
                        transient,
                    }
                }
                _ => TxFailure::Batch,
            })
    }

    async fn move_checkpoint(
        &mut self,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), TxFailure> {
        let name = self.name.clone();
        let moved = checkpoints::move_to(self.tx()?, &name, from, to).await;
        moved.map_err(|failure| self.fail(failure))
    }

    async fn reset_read_model(&mut self) -> Result<Result<(), HandlerError>, TxFailure> {
        let tx = self.tx.as_mut().ok_or_else(|| {
            TxFailure::Worker(WorkerError::NotActive {
                projection: self.name.clone(),
            })
        })?;
        let reset = self.projection.reset(tx).await;
        let Some(Ok(model)) = &self.model else {
            return Ok(reset);
        };
        // The worker owns a declared read model: it empties it, whatever the projection's own reset says.
        model.empty(tx).await.map_err(|e| self.fail(e.into()))?;
        Ok(owned_reset(reset))
    }

    async fn delete_checkpoint(&mut self) -> Result<(), TxFailure> {
        let name = self.name.clone();
        let deleted = sqlx::query("DELETE FROM checkpoints WHERE name = ?1")
            .bind(&name)
            .execute(&mut **self.tx()?)
            .await;
        deleted.map(drop).map_err(|e| self.fail(e.into()))
    }

    async fn park(&mut self, letter: &DeadLetter) -> Result<(), TxFailure> {
        let parked = match self.tx.as_mut() {
            Some(tx) => dead_letters::park(tx, letter).await.map_err(Failure::Db),
            None => self
                .store
                .in_write("park a dead letter", async |conn| {
                    Ok(dead_letters::park(conn, letter).await?)
                })
                .await
                .map_err(Failure::Refused),
        };
        parked.map_err(|failure| self.fail(failure))
    }

    async fn remove_dead_letter(&mut self, event_id: EventId) -> Result<(), TxFailure> {
        let name = self.name.clone();
        let removed = match self.tx.as_mut() {
            Some(tx) => dead_letters::remove(tx, &name, event_id)
                .await
                .map_err(Failure::Db),
            None => self
                .store
                .in_write("discard", async |conn| {
                    Ok(dead_letters::remove(conn, &name, event_id).await?)
                })
                .await
                .map_err(Failure::Refused),
        };
        removed.map_err(|failure| self.fail(failure))
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, TxFailure> {
        let letters = DeadLetterStore::dead_letters(&self.store, &self.name).await;
        Ok(letters.map_err(WorkerError::Store)?)
    }
}
