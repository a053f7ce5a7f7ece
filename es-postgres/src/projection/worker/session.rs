//! The worker's connection: claiming it, the batch transaction with its checkpoint compare-and-set, failures.

use std::time::Duration;

use es_core::backend::{Acquired, ApplyError, BatchError, WorkerError, describe};
use es_core::backend::{rebuild_allowed, reset_allowed};
use es_core::projection::HandlerError;
use es_core::projection::NoReset;
use es_core::{DomainEvent, Position, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::{Claim, Failure, PgProjectionWorker};
use crate::PgEventStore;
use crate::error::backend;
use crate::projection::PgProjection;
use crate::projection::lease::{BeatError, Claimed};
use crate::projection::read_model::{ModelError, Stage, caught_up};
use crate::rows::{bind_half, position};

impl<P: PgProjection> PgProjectionWorker<P> {
    pub(super) fn lost(&mut self, error: sqlx::Error, operation: &'static str) -> WorkerError {
        // The connection may be gone, and the lock with it: acquire again before the next batch.
        self.conn = None;
        WorkerError::Lost {
            projection: self.name.clone(),
            error: crate::error::describe(operation, &error),
        }
    }

    pub(super) fn conn(&mut self) -> Result<&mut PgConnection, WorkerError> {
        self.conn.as_mut().ok_or_else(|| not_active(&self.name))
    }

    /// Takes the lock-holding connection out for one transaction; put it back with `self.conn = Some(..)`.
    pub(super) fn take_conn(&mut self) -> Result<PgConnection, WorkerError> {
        self.conn.take().ok_or_else(|| not_active(&self.name))
    }

    /// Begins a batch's transaction; for a declared read model, first makes sure its version is still current
    /// (a retired version's worker handles nothing more).
    pub(super) async fn begin<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, Failure> {
        let mut tx = Connection::begin(conn).await?;
        if let Some(Ok(model)) = &self.model
            && !model.still_current(&mut tx).await?
        {
            return Err(Failure::Retired(model.retired()));
        }
        Ok(tx)
    }

    /// Moves the checkpoint from `from` to `to` inside `tx`; `Fenced` when it was elsewhere, `Lost` when a
    /// partition's lease is gone.
    pub(super) async fn move_checkpoint(
        &self,
        tx: &mut PgConnection,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), Failure> {
        if let Claim::Lease(lease) = &self.claim {
            return lease.move_checkpoint(tx, from, to).await;
        }

        let sql = &self.store.inner.sql;
        let query = match from {
            None => sqlx::query(&sql.checkpoints.create)
                .bind(&self.name)
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
            Some(from) => sqlx::query(&sql.checkpoints.move_to)
                .bind(&self.name)
                .bind(bind_half(from.commit))
                .bind(bind_half(from.prepare))
                .bind(bind_half(to.commit))
                .bind(bind_half(to.prepare)),
        };
        if query.execute(&mut *tx).await?.rows_affected() == 1 {
            Ok(())
        } else {
            Err(Failure::Fenced(
                load_checkpoint(&self.store, tx, &self.name).await?,
            ))
        }
    }

    /// Handles the event at `index` of a batch as a batch of one.
    pub(super) async fn handle_one(
        &self,
        tx: &mut PgConnection,
        index: usize,
        event: &RecordedEvent,
    ) -> Result<(), Failure> {
        let typed = decode::<P::Event>(index, event)?;
        self.projection
            .handle_batch(tx, vec![(typed, event)])
            .await
            .map_err(|e| handler_failure(index, e))
    }

    /// Applies `events` and moves the checkpoint in one transaction: as one batch, or one event at a time.
    pub(super) async fn apply_in_tx(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
        from: Option<Position>,
        to: Position,
        one_by_one: bool,
    ) -> Result<(), Failure> {
        let mut tx = self.begin(conn).await?;
        if one_by_one {
            for (index, event) in events.iter().enumerate() {
                self.handle_one(&mut tx, index, event).await?;
            }
        } else {
            let batch = events
                .iter()
                .enumerate()
                .map(|(index, event)| Ok((decode::<P::Event>(index, event)?, event)))
                .collect::<Result<Vec<_>, Failure>>()?;
            let single = batch.len() == 1;
            match self.projection.handle_batch(&mut tx, batch).await {
                Ok(()) => {}
                Err(error) => match handler_failure(0, error) {
                    Failure::Handler(..) if !single => return Err(Failure::Batch),
                    failure => return Err(failure),
                },
            }
        }
        self.move_checkpoint(&mut tx, from, to).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) fn failure(
        &mut self,
        failure: Failure,
        expected: Option<Position>,
        operation: &'static str,
    ) -> ApplyError {
        self.failure_after(failure, expected, operation, 1)
    }

    /// [`failure`](Self::failure) of a call that tried the failing event `attempts` times.
    pub(super) fn failure_after(
        &mut self,
        failure: Failure,
        expected: Option<Position>,
        operation: &'static str,
        attempts: u32,
    ) -> ApplyError {
        match failure {
            Failure::Handler(index, error, transient) => ApplyError::Handler(BatchError {
                index,
                error,
                transient,
                kept_before: false,
                attempts,
            }),
            Failure::Batch => ApplyError::Worker(WorkerError::Other {
                projection: self.name.clone(),
                error: "a batch handler failed".to_owned(),
            }),
            Failure::Fenced(actual) => ApplyError::Worker(WorkerError::Fenced {
                projection: self.name.clone(),
                expected,
                actual,
            }),
            Failure::Retired(error) => ApplyError::Worker(WorkerError::Other {
                projection: self.name.clone(),
                error,
            }),
            Failure::Lost(error) => {
                self.conn = None;
                ApplyError::Worker(WorkerError::Lost {
                    projection: self.name.clone(),
                    error,
                })
            }
            Failure::Refused(error) => ApplyError::Worker(error),
            Failure::Db(error) => ApplyError::Worker(self.lost(error, operation)),
        }
    }

    /// Moves the checkpoint to `to`, or (`None`) empties the read model and goes back to the start: for a
    /// partition, every partition goes back (see [`PgPartitions::rebuild`](super::PgPartitions::rebuild)).
    pub(super) async fn reset_in_tx(
        &mut self,
        conn: &mut PgConnection,
        from: Option<Position>,
        to: Option<Position>,
    ) -> Result<(), Failure> {
        let mut tx = self.begin(conn).await?;
        match to {
            None => {
                let reset = self.projection.reset(&mut tx).await;
                let reset = match &self.model {
                    // The worker owns a declared read model: it empties it, whatever the projection's own reset.
                    Some(Ok(model)) => {
                        model.truncate(&mut tx).await?;
                        reset.or_else(|error| {
                            if error.is::<NoReset>() {
                                Ok(())
                            } else {
                                Err(error)
                            }
                        })
                    }
                    _ => reset,
                };
                rebuild_allowed(&self.name, reset, self.projection.idempotent())
                    .map_err(Failure::Refused)?;
                match &mut self.claim {
                    Claim::Lock(_) => {
                        sqlx::query(&self.store.inner.sql.checkpoints.delete)
                            .bind(&self.name)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Claim::Lease(lease) => lease.rebuild(&mut tx).await?,
                }
            }
            Some(to) => {
                reset_allowed(&self.name, from, to, self.projection.idempotent())
                    .map_err(Failure::Refused)?;
                self.move_checkpoint(&mut tx, from, to).await?
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored checkpoint, read on the claim's connection.
    pub(super) async fn load(&mut self) -> Result<Option<Position>, sqlx::Error> {
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        match &self.claim {
            Claim::Lock(_) => load_checkpoint(&self.store, conn, &self.name).await,
            Claim::Lease(lease) => lease.checkpoint(conn).await,
        }
    }

    /// Tries to become the active instance once.
    pub(super) async fn try_claim(&mut self) -> Result<Acquired, WorkerError> {
        let failed = |error: sqlx::Error| WorkerError::Store(backend("acquire")(error));
        let standby = |holder| Acquired::Standby {
            holder,
            retry_in: self.standby_poll,
        };
        let claimed = match &mut self.claim {
            Claim::Lock(lock) => match lock.take(&self.store, self.lease).await.map_err(failed)? {
                Some(conn) => Claimed::Won(conn),
                None => Claimed::Busy(lock.holder(&self.store).await.map_err(failed)?),
            },
            Claim::Lease(lease) => lease
                .claim()
                .await
                .map_err(|e| beat_failed(&self.name, e))?,
        };
        match claimed {
            Claimed::Won(mut conn) => {
                self.stage = match &self.model {
                    None => None,
                    Some(Err(error)) => return Err(self.invalid(error.clone())),
                    Some(Ok(model)) => match model.set_up(&mut conn).await {
                        Ok(stage) => Some(stage),
                        Err(ModelError::Db(error)) => return Err(failed(error)),
                        Err(ModelError::Invalid(error)) => return Err(self.invalid(error)),
                    },
                };
                tracing::info!(projection = %self.name, stage = ?self.stage, "became the active instance");
                self.conn = Some(conn);
                Ok(Acquired::Active)
            }
            Claimed::Busy(holder) => Ok(standby(holder)),
        }
    }

    pub(super) fn invalid(&self, error: String) -> WorkerError {
        WorkerError::Other {
            projection: self.name.clone(),
            error,
        }
    }

    /// A building read model that has caught up with the head becomes the live one.
    pub(super) async fn promote_if_caught_up(&mut self, to: Position) -> Result<(), WorkerError> {
        let (Some(Stage::Building), Some(Ok(model))) = (self.stage, &self.model) else {
            return Ok(());
        };
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let done = match caught_up(&self.store, to).await {
            Ok(false) => return Ok(()),
            Ok(true) => model.promote(conn).await,
            Err(error) => Err(ModelError::Db(error)),
        };
        match done {
            Ok(()) => {
                self.stage = Some(Stage::Live);
                Ok(())
            }
            Err(ModelError::Db(error)) => Err(self.lost(error, "promote")),
            Err(ModelError::Invalid(error)) => Err(self.invalid(error)),
        }
    }

    /// For a partition: gives its lease up when this process holds more than its share, so a newer worker can
    /// claim it.
    pub(super) async fn hand_over_if_over_share(&mut self) -> Result<(), WorkerError> {
        let Claim::Lease(lease) = &mut self.claim else {
            return Ok(());
        };
        if !lease
            .should_hand_over()
            .await
            .map_err(|e| beat_failed(&self.name, e))?
        {
            return Ok(());
        }
        let released = lease.release().await;
        self.conn = None;
        released.map_err(|e| WorkerError::Store(backend("release")(e)))?;
        Err(WorkerError::Lost {
            projection: self.name.clone(),
            error: "handed over to balance the partitions between the workers".to_owned(),
        })
    }
}

/// A failed membership beat, as the runner sees it: retried (the database is down) or a configuration error.
pub(super) fn beat_failed(projection: &str, error: BeatError) -> WorkerError {
    match error {
        BeatError::Db(error) => WorkerError::Store(backend("acquire")(error)),
        BeatError::Partitions(error) => WorkerError::Other {
            projection: projection.to_owned(),
            error,
        },
    }
}

/// Opens a dedicated connection with the store's settings, within its connect timeout.
pub(crate) async fn connect(store: &PgEventStore) -> Result<PgConnection, sqlx::Error> {
    let options = store.inner.pool.connect_options();
    let connect = PgConnection::connect_with(&options);
    tokio::time::timeout(store.inner.connect_timeout, connect)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}

/// Decodes the event at `index` of a batch; failing, that event's failure.
pub(super) fn decode<E: DomainEvent>(index: usize, event: &RecordedEvent) -> Result<E, Failure> {
    event
        .decode::<E>()
        .map_err(|e| Failure::Handler(index, e.to_string(), false))
}

/// A handler's error; one that says the connection is gone is the worker's failure, not the event's.
pub(super) fn handler_failure(index: usize, error: HandlerError) -> Failure {
    match error.downcast::<sqlx::Error>() {
        Ok(error) if crate::error::connection_lost(&error) => Failure::Db(*error),
        Ok(error) => Failure::Handler(index, error.to_string(), false),
        Err(error) => {
            let (error, transient) = describe(&error);
            Failure::Handler(index, error, transient)
        }
    }
}

/// How long the server keeps a silent holder's lock by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The error for an operation attempted without holding the projection's lock.
pub(super) fn not_active(projection: &str) -> WorkerError {
    WorkerError::NotActive {
        projection: projection.to_owned(),
    }
}

pub(super) async fn load_checkpoint(
    store: &PgEventStore,
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Position>, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(&store.inner.sql.checkpoints.load)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(tx, pos)| position(tx, pos)))
}
