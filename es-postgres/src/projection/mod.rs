//! Transactional projections: the read model and the checkpoint commit together, on one active instance per
//! projection ([`PgProjectionWorker`], an advisory lock) or per partition ([`PgPartitions`], leases).

use std::sync::Arc;

use async_trait::async_trait;
use es_core::projection::HandlerError;
use es_core::{DomainEvent, RecordedEvent};
use sqlx::PgConnection;

mod lease;
mod lock;
mod partitions;
mod processed;
mod read_model;
mod worker;

pub use es_core::store::partition_of;
pub(crate) use partitions::partition_sql;
pub use partitions::{PartitionStatus, PgPartitions};
pub use processed::PgTransaction;
pub use read_model::ReadModel;
pub use worker::{DEFAULT_LEASE, PgProjectionWorker};

/// A projection whose read model lives in the same PostgreSQL database as the events. Its handler writes through
/// the open transaction that also moves the checkpoint, so each event's effect is applied exactly once, even across
/// crashes. Run it with [`PgProjectionWorker`].
///
/// ```no_run
/// # #![allow(dead_code)]
/// use es_core::{DomainEvent, RecordedEvent};
/// use es_core::projection::HandlerError;
/// use es_postgres::PgProjection;
///
/// #[derive(DomainEvent)]
/// enum AccountEvent { Deposited { amount: i64 } }
///
/// struct Balances;
///
/// #[async_trait::async_trait]
/// impl PgProjection for Balances {
///     type Event = AccountEvent;
///     fn name(&self) -> &str { "balances" }
///     async fn handle(&self, tx: &mut sqlx::PgConnection, event: AccountEvent, record: &RecordedEvent)
///         -> Result<(), HandlerError> {
///         let AccountEvent::Deposited { amount } = event;
///         sqlx::query("INSERT INTO balances (account, balance) VALUES ($1, $2) \
///                      ON CONFLICT (account) DO UPDATE SET balance = balances.balance + $2")
///             .bind(record.stream_id.as_str()).bind(amount).execute(tx).await?;
///         Ok(())
///     }
///     async fn reset(&self, tx: &mut sqlx::PgConnection) -> Result<(), HandlerError> {
///         sqlx::query("TRUNCATE balances").execute(tx).await?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait PgProjection: Send + Sync + 'static {
    /// The events it reads.
    type Event: DomainEvent;

    /// Its unique name.
    fn name(&self) -> &str;

    /// The stream categories it reads: by default its event type's
    /// [`DomainEvent::CATEGORIES`](es_core::DomainEvent::CATEGORIES) (empty: every category).
    fn categories(&self) -> &[&str] {
        Self::Event::CATEGORIES
    }

    /// Applies one event, writing through `tx`: a connection inside the batch's transaction. Do not commit it.
    ///
    /// # Errors
    /// Any error: the batch rolls back, and the runner retries, then applies the failure policy.
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError>;

    /// The read model's tables and version, when the worker should own its DDL (setup before the first batch,
    /// versions built side by side and switched atomically: see [`ReadModel`]). By default `None`: the tables are
    /// the application's, and [`reset`](Self::reset) empties them.
    fn read_model(&self) -> Option<ReadModel> {
        None
    }

    /// Applies a batch of events, in order, writing through `tx` (the batch's transaction, which also moves the
    /// checkpoint: do not commit it). By default it calls [`handle`](Self::handle) for each event; override it to
    /// write the whole batch at once (one multi-row `INSERT ... SELECT FROM UNNEST`, or `COPY`), which is what
    /// makes a read model fast: one statement per batch instead of one per event.
    ///
    /// When it fails, the worker rolls the batch back and applies its events again one at a time (each as a batch
    /// of one), in a new transaction, to find the event that fails: the events before it are kept, and the failure
    /// policy applies to that event alone, as with [`handle`](Self::handle). Events are in the feed's order, so
    /// each stream's events are in stream order.
    ///
    /// ```no_run
    /// # #![allow(dead_code)]
    /// use std::collections::HashMap;
    /// use es_core::{DomainEvent, RecordedEvent};
    /// use es_core::projection::HandlerError;
    /// use es_postgres::PgProjection;
    ///
    /// #[derive(DomainEvent)]
    /// enum AccountEvent { Deposited { amount: i64 } }
    ///
    /// struct Balances;
    ///
    /// #[async_trait::async_trait]
    /// impl PgProjection for Balances {
    ///     type Event = AccountEvent;
    ///     fn name(&self) -> &str { "balances" }
    ///     async fn handle(&self, tx: &mut sqlx::PgConnection, event: AccountEvent, record: &RecordedEvent)
    ///         -> Result<(), HandlerError> {
    ///         self.handle_batch(tx, vec![(event, record)]).await
    ///     }
    ///     async fn handle_batch(&self, tx: &mut sqlx::PgConnection, events: Vec<(AccountEvent, &RecordedEvent)>)
    ///         -> Result<(), HandlerError> {
    ///         // Sum per account first: one statement cannot update the same row twice.
    ///         let mut sums: HashMap<&str, i64> = HashMap::new();
    ///         for (AccountEvent::Deposited { amount }, record) in events {
    ///             *sums.entry(record.stream_id.as_str()).or_default() += amount;
    ///         }
    ///         let (accounts, amounts): (Vec<&str>, Vec<i64>) = sums.into_iter().unzip();
    ///         sqlx::query("INSERT INTO balances (account, balance) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
    ///                      ON CONFLICT (account) DO UPDATE SET balance = balances.balance + EXCLUDED.balance")
    ///             .bind(accounts).bind(amounts).execute(tx).await?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// Any error: as for [`handle`](Self::handle).
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: Vec<(Self::Event, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        for (event, record) in events {
            self.handle(tx, event, record).await?;
        }
        Ok(())
    }

    /// Empties the read model, in the transaction that also deletes the checkpoint (for a rebuild). Not
    /// implemented, it returns [`NoReset`](es_core::projection::NoReset) and a rebuild is refused, nothing changed
    /// — unless the worker owns the read model ([`read_model`](Self::read_model)) or the handlers are
    /// [`idempotent`](Self::idempotent).
    ///
    /// # Errors
    /// Any error; the rebuild rolls back.
    async fn reset(&self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let _ = tx;
        Err(Box::new(es_core::projection::NoReset))
    }

    /// Whether applying an event it already applied changes nothing: then a rebuild may replay onto the read model
    /// as it is and a reset may move the checkpoint back. False by default.
    fn idempotent(&self) -> bool {
        false
    }
}

/// A shared projection is one too: the partitions of a [`PgPartitions`] share theirs.
#[async_trait]
impl<P: PgProjection> PgProjection for Arc<P> {
    type Event = P::Event;

    fn name(&self) -> &str {
        (**self).name()
    }

    fn categories(&self) -> &[&str] {
        (**self).categories()
    }

    fn read_model(&self) -> Option<ReadModel> {
        (**self).read_model()
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        (**self).handle(tx, event, record).await
    }

    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: Vec<(Self::Event, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        (**self).handle_batch(tx, events).await
    }

    async fn reset(&self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        (**self).reset(tx).await
    }

    fn idempotent(&self) -> bool {
        (**self).idempotent()
    }
}
