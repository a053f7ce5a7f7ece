//! [`TransactionalBackend`] on PostgreSQL: the claim's dedicated connection, its transaction and statements.

use std::time::Duration;

use async_trait::async_trait;
use es_core::backend::{
    Acquired, TransactionalBackend, TxFailure, WorkerError, owned_reset, wants,
};
use es_core::projection::{DeadLetter, HandlerError};
use es_core::store::{FeedFilter, partition_of};
use es_core::{EventId, Position, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::session::{decode, handler_failure, load_checkpoint, not_active};
use super::{Claim, Failure};
use crate::PgEventStore;
use crate::dead_letters;
use crate::projection::PgProjection;
use crate::projection::read_model::{Bound, Stage};
use crate::rows::bind_half;

/// A [`PgProjection`] on its claim's connection.
#[derive(Debug)]
pub(crate) struct PgBackend<P> {
    pub(super) store: PgEventStore,
    pub(super) projection: P,
    pub(super) name: String,
    pub(super) claim: Claim,
    pub(super) standby_poll: Duration,
    pub(super) lease: Duration,
    /// The dedicated connection holding the claim; `None` until acquired or after it failed.
    pub(super) conn: Option<PgConnection>,
    /// Whether a transaction is open on it (one still open at `begin` was abandoned by a cancelled caller).
    pub(super) open: bool,
    /// The declared read model (or why it is invalid), and where it stood when this worker became active.
    pub(super) model: Option<Result<Bound, String>>,
    pub(super) stage: Option<Stage>,
}

impl<P: PgProjection> PgBackend<P> {
    /// The claim's connection, or `NotActive`.
    pub(super) fn conn(&mut self) -> Result<&mut PgConnection, WorkerError> {
        self.conn.as_mut().ok_or_else(|| not_active(&self.name))
    }

    /// The runner's view of `failure`: a failing connection takes the claim with it (acquire again).
    pub(super) fn fail(&mut self, failure: Failure, operation: &'static str) -> TxFailure {
        match failure {
            Failure::Fenced(actual) => TxFailure::Fenced(actual),
            Failure::Lost(error) => {
                self.conn = None;
                TxFailure::Worker(WorkerError::Lost {
                    projection: self.name.clone(),
                    error,
                })
            }
            Failure::Db(error) => TxFailure::Worker(self.lost(error, operation)),
        }
    }

    pub(super) fn lost(&mut self, error: sqlx::Error, operation: &'static str) -> WorkerError {
        // The connection may be gone, and the lock with it: acquire again before the next batch.
        self.conn = None;
        WorkerError::Lost {
            projection: self.name.clone(),
            error: crate::error::describe(operation, &error),
        }
    }

    async fn move_checkpoint_on(
        &mut self,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), Failure> {
        let (store, name) = (&self.store, &self.name);
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        if let Claim::Lease(lease) = &self.claim {
            return lease.move_checkpoint(conn, from, to).await;
        }
        let sql = &store.inner.sql;
        let query = match from {
            None => sqlx::query(&sql.checkpoints.create)
                .bind(name)
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
            Some(from) => sqlx::query(&sql.checkpoints.move_to)
                .bind(name)
                .bind(bind_half(from.commit))
                .bind(bind_half(from.prepare))
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
        };
        if query.execute(&mut *conn).await?.rows_affected() == 1 {
            Ok(())
        } else {
            Err(Failure::Fenced(load_checkpoint(store, conn, name).await?))
        }
    }
}

#[async_trait]
impl<P: PgProjection> TransactionalBackend for PgBackend<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn feed_filter(&self) -> FeedFilter {
        let filter = FeedFilter::of::<P::Event>(self.projection.categories());
        match &self.claim {
            Claim::Lock(_) => filter,
            Claim::Lease(lease) => filter.partition(lease.partition, lease.shared.partitions),
        }
    }

    fn wants(&self, stream: &str, event_type: &str) -> bool {
        wants::<P::Event>(self.projection.categories(), stream, event_type)
            && match &self.claim {
                Claim::Lock(_) => true,
                Claim::Lease(lease) => {
                    partition_of(stream, lease.shared.partitions) == lease.partition
                }
            }
    }

    fn idempotent(&self) -> bool {
        self.projection.idempotent()
    }

    async fn acquire(&mut self) -> Result<Acquired, WorkerError> {
        if self.conn.is_some() {
            return Ok(Acquired::Active);
        }
        if let Claim::Lease(lease) = &mut self.claim {
            lease.forget();
        }
        self.try_claim().await
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        Some(self.lease / 3)
    }

    async fn heartbeat(&mut self) -> Result<(), WorkerError> {
        self.hand_over_if_over_share().await?;
        let conn = self.conn.as_mut().ok_or_else(|| not_active(&self.name))?;
        let beat = match &self.claim {
            Claim::Lock(_) => sqlx::query("SELECT 1")
                .execute(conn)
                .await
                .map(drop)
                .map_err(Failure::Db),
            Claim::Lease(lease) => lease.renew(conn).await,
        };
        beat.map_err(|failure| match self.fail(failure, "heartbeat") {
            TxFailure::Worker(error) => error,
            _ => not_active(&self.name),
        })
    }

    async fn release(&mut self) {
        if let Claim::Lease(lease) = &mut self.claim
            && let Err(error) = lease.release().await
        {
            tracing::warn!(projection = %self.name, %error, "could not release the partition; it expires by itself");
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }

    async fn before_batch(&mut self) -> Result<(), WorkerError> {
        self.hand_over_if_over_share().await
    }

    async fn load_checkpoint(&mut self) -> Result<Option<Position>, TxFailure> {
        let (store, name) = (&self.store, &self.name);
        let Some(conn) = self.conn.as_mut() else {
            return Err(not_active(name).into());
        };
        let loaded = match &self.claim {
            Claim::Lock(_) => load_checkpoint(store, conn, name).await,
            Claim::Lease(lease) => lease.checkpoint(conn).await,
        };
        loaded.map_err(|error| self.lost(error, "load_checkpoint").into())
    }

    async fn begin(&mut self) -> Result<(), TxFailure> {
        if self.open {
            // A caller cancelled mid-transaction: the connection's state is unknown, so it goes (and its lock with
            // it: the server rolls the transaction back).
            self.conn = None;
            self.open = false;
        }
        let conn = self.conn()?;
        if let Err(error) = sqlx::query("BEGIN").execute(&mut *conn).await {
            return Err(self.lost(error, "begin").into());
        }
        self.open = true;
        // A declared read model: its version must still be current (a retired version's worker handles nothing).
        if let Some(Ok(model)) = &self.model {
            let conn = self.conn.as_mut().ok_or_else(|| not_active(&self.name))?;
            match model.still_current(conn).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(TxFailure::Worker(WorkerError::Other {
                        projection: self.name.clone(),
                        error: model.retired(),
                    }));
                }
                Err(error) => return Err(self.lost(error, "begin").into()),
            }
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), TxFailure> {
        let committed = sqlx::query("COMMIT").execute(self.conn()?).await;
        self.open = false;
        committed
            .map(drop)
            .map_err(|error| self.lost(error, "commit").into())
    }

    async fn rollback(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && sqlx::query("ROLLBACK").execute(conn).await.is_err()
        {
            self.conn = None;
        }
        self.open = false;
    }

    async fn handle(&mut self, first: usize, events: &[RecordedEvent]) -> Result<(), TxFailure> {
        let batch = events
            .iter()
            .enumerate()
            .map(|(index, event)| Ok((decode::<P::Event>(first + index, event)?, event)))
            .collect::<Result<Vec<_>, TxFailure>>()?;
        let conn = self.conn.as_mut().ok_or_else(|| not_active(&self.name))?;
        match self.projection.handle_batch(conn, batch).await {
            Ok(()) => Ok(()),
            Err(error) => match handler_failure(first, error) {
                // Given several events, the handler failed on one of them: which one, the worker finds out.
                Ok(_) if events.len() > 1 => Err(TxFailure::Batch),
                Ok(failure) => Err(failure),
                Err(lost) => Err(self.lost(lost, "handle").into()),
            },
        }
    }

    async fn move_checkpoint(
        &mut self,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), TxFailure> {
        let moved = self.move_checkpoint_on(from, to).await;
        moved.map_err(|failure| self.fail(failure, "move_checkpoint"))
    }

    async fn reset_read_model(&mut self) -> Result<Result<(), HandlerError>, TxFailure> {
        let conn = self.conn.as_mut().ok_or_else(|| not_active(&self.name))?;
        let reset = self.projection.reset(conn).await;
        let Some(Ok(model)) = &self.model else {
            return Ok(reset);
        };
        // The worker owns a declared read model: it empties it, whatever the projection's own reset says.
        let truncated = model.truncate(conn).await;
        match truncated {
            Ok(()) => Ok(owned_reset(reset)),
            Err(error) => Err(self.lost(error, "reset").into()),
        }
    }

    async fn delete_checkpoint(&mut self) -> Result<(), TxFailure> {
        let (store, name) = (&self.store, &self.name);
        let conn = self.conn.as_mut().ok_or_else(|| not_active(name))?;
        let deleted = match &mut self.claim {
            Claim::Lock(_) => sqlx::query(&store.inner.sql.checkpoints.delete)
                .bind(name)
                .execute(conn)
                .await
                .map(drop)
                .map_err(Failure::Db),
            Claim::Lease(lease) => lease.rebuild(conn).await,
        };
        deleted.map_err(|failure| self.fail(failure, "rebuild"))
    }

    async fn park(&mut self, letter: &DeadLetter) -> Result<(), TxFailure> {
        let store = self.store.clone();
        let parked = dead_letters::park(&store.inner.sql, self.conn()?, letter).await;
        parked.map_err(|error| self.lost(error, "park").into())
    }

    async fn remove_dead_letter(&mut self, event_id: EventId) -> Result<(), TxFailure> {
        let (store, name) = (self.store.clone(), self.name.clone());
        let removed = sqlx::query(&store.inner.sql.dead_letters.remove)
            .bind(&name)
            .bind(event_id.as_uuid())
            .execute(self.conn()?)
            .await;
        removed
            .map(drop)
            .map_err(|error| self.lost(error, "remove_dead_letter").into())
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, TxFailure> {
        let (store, name) = (self.store.clone(), self.name.clone());
        Ok(dead_letters::list(&store.inner.sql, self.conn()?, &name)
            .await
            .map_err(WorkerError::Store)?)
    }

    async fn committed(&mut self, to: Position) -> Result<(), WorkerError> {
        self.promote_if_caught_up(to).await
    }
}
