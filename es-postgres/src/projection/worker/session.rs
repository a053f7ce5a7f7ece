//! The worker's claim: taking it, setting up the declared read model, switching it over, handing a partition
//! over; and the helpers of the batch transaction.

use std::time::Duration;

use es_core::backend::{Acquired, TxFailure, WorkerError, describe};
use es_core::projection::HandlerError;
use es_core::{DomainEvent, Position, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::Claim;
use super::backend::PgBackend;
use crate::PgEventStore;
use crate::error::backend;
use crate::projection::PgProjection;
use crate::projection::lease::{BeatError, Claimed};
use crate::projection::read_model::{ModelError, Stage, caught_up};
use crate::rows::position;

impl<P: PgProjection> PgBackend<P> {
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
                self.open = false;
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
pub(super) fn decode<E: DomainEvent>(index: usize, event: &RecordedEvent) -> Result<E, TxFailure> {
    event.decode::<E>().map_err(|e| TxFailure::Handler {
        index,
        error: e.to_string(),
        transient: false,
    })
}

/// A handler's error, as the failure of the event at `index`; `Err` when it says the connection is gone (the
/// worker's failure, not the event's).
pub(super) fn handler_failure(index: usize, error: HandlerError) -> Result<TxFailure, sqlx::Error> {
    let (error, transient) = match error.downcast::<sqlx::Error>() {
        Ok(error) if crate::error::connection_lost(&error) => return Err(*error),
        Ok(error) => (error.to_string(), false),
        Err(error) => describe(&error),
    };
    Ok(TxFailure::Handler {
        index,
        error,
        transient,
    })
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
