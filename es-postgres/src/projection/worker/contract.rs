//! [`ProjectionWorker`] for [`PgProjectionWorker`]: what the runner calls.

use std::time::Duration;

use async_trait::async_trait;
use es_core::backend::{Acquired, ApplyError, ProjectionWorker, WorkerError, wants};
use es_core::projection::{DeadLetter, ProjectionOptions};
use es_core::store::FeedFilter;
use es_core::{Position, RecordedEvent};
use sqlx::Connection;

use super::{Claim, Failure, PgProjectionWorker};
use crate::dead_letters;
use crate::projection::PgProjection;
use es_core::store::partition_of;

#[async_trait]
impl<P: PgProjection> ProjectionWorker for PgProjectionWorker<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> &ProjectionOptions {
        &self.options
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
        let mut conn = self.take_conn()?;
        let result = match &self.claim {
            Claim::Lock(_) => sqlx::query("SELECT 1")
                .execute(&mut conn)
                .await
                .map(|_| ())
                .map_err(Failure::Db),
            Claim::Lease(lease) => lease.renew(&mut conn).await,
        };
        self.conn = Some(conn);
        result.map_err(|failure| match self.failure(failure, None, "heartbeat") {
            ApplyError::Worker(error) => error,
            ApplyError::Handler(error) => WorkerError::Other {
                projection: self.name.clone(),
                error: error.error,
            },
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

    async fn checkpoint(&mut self) -> Result<Option<Position>, WorkerError> {
        match self.load().await {
            Ok(position) => Ok(position),
            Err(error) => Err(self.lost(error, "load_checkpoint")),
        }
    }

    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
    ) -> Result<(), ApplyError> {
        self.hand_over_if_over_share().await?;
        let mut conn = self.take_conn().map_err(ApplyError::Worker)?;
        let (result, attempts) = match self.apply_in_tx(&mut conn, events, from, to, false).await {
            // Which event failed? Apply them one by one (a transient failure may not come back at all): the failing
            // one is then tried a second time.
            Err(Failure::Batch) => (self.apply_in_tx(&mut conn, events, from, to, true).await, 2),
            other => (other, 1),
        };
        self.conn = Some(conn);
        result.map_err(|failure| self.failure_after(failure, from, "apply", attempts))?;
        Ok(self.promote_if_caught_up(to).await?)
    }

    async fn park(
        &mut self,
        letter: DeadLetter,
        from: Option<Position>,
    ) -> Result<(), WorkerError> {
        let mut conn = self.take_conn()?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = self.begin(&mut conn).await?;
            dead_letters::park(sql, &mut tx, &letter).await?;
            self.move_checkpoint(&mut tx, from, letter.position).await?;
            tx.commit().await?;
            Ok::<_, Failure>(())
        }
        .await;
        self.conn = Some(conn);
        result.map_err(|failure| match self.failure(failure, from, "park") {
            ApplyError::Worker(error) => error,
            ApplyError::Handler(error) => WorkerError::Other {
                projection: self.name.clone(),
                error: error.error,
            },
        })
    }

    async fn reset(
        &mut self,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), WorkerError> {
        let mut conn = self.take_conn()?;
        let result = self.reset_in_tx(&mut conn, from, to).await;
        self.conn = Some(conn);
        result.map_err(|failure| match self.failure(failure, from, "reset") {
            ApplyError::Worker(error) => error,
            ApplyError::Handler(error) => WorkerError::Reset {
                projection: self.name.clone(),
                error: error.error,
            },
        })
    }

    async fn dead_letters(&mut self) -> Result<Vec<DeadLetter>, WorkerError> {
        let (store, name) = (self.store.clone(), self.name.clone());
        Ok(dead_letters::list(&store.inner.sql, self.conn()?, &name).await?)
    }

    async fn discard(&mut self, letter: &DeadLetter) -> Result<(), WorkerError> {
        let (store, name) = (self.store.clone(), self.name.clone());
        let removed = sqlx::query(&store.inner.sql.dead_letters.remove)
            .bind(&name)
            .bind(letter.event_id.as_uuid())
            .execute(self.conn()?)
            .await;
        removed
            .map(drop)
            .map_err(|error| self.lost(error, "discard"))
    }

    async fn redrive(
        &mut self,
        letter: &DeadLetter,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let mut conn = self.take_conn().map_err(ApplyError::Worker)?;
        let sql = &self.store.inner.sql;
        let result = async {
            let mut tx = self.begin(&mut conn).await?;
            self.handle_one(&mut tx, 0, event).await?;
            sqlx::query(&sql.dead_letters.remove)
                .bind(&self.name)
                .bind(letter.event_id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, Failure>(())
        }
        .await;
        self.conn = Some(conn);
        result.map_err(|failure| self.failure(failure, None, "redrive"))
    }

    async fn replace_dead_letter(&mut self, letter: DeadLetter) -> Result<(), WorkerError> {
        let store = self.store.clone();
        let parked = dead_letters::park(&store.inner.sql, self.conn()?, &letter).await;
        parked.map_err(|error| self.lost(error, "replace_dead_letter"))
    }
}
