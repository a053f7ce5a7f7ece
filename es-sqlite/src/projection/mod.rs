//! Transactional projections on SQLite: the read model and the checkpoint in one transaction (exactly-once), one
//! active worker per projection across the processes sharing the file (a lease).

mod backend;
mod lease;
mod read_model;
mod worker;

pub use read_model::ReadModel;
pub use worker::SqliteProjectionWorker;

use async_trait::async_trait;
use es_core::projection::HandlerError;
use es_core::{DomainEvent, RecordedEvent};
use sqlx::SqliteConnection;

/// A read model in the store's file, written in the transaction that moves its checkpoint: after a crash it is
/// exactly as far as its checkpoint says (no event lost, none applied twice).
///
/// ```
/// use es_core::projection::{HandlerError, ProjectionOptions};
/// use es_core::{DomainEvent, ProjectionRunner, RecordedEvent};
/// use es_sqlite::{SqliteEventStore, SqliteProjection, SqliteProjectionWorker};
///
/// #[derive(DomainEvent)]
/// enum AccountEvent { Deposited { amount: i64 } }
///
/// struct Balances;
///
/// #[es_core::async_trait]
/// impl SqliteProjection for Balances {
///     type Event = AccountEvent;
///     fn name(&self) -> &str { "balances" }
///     async fn handle(&self, tx: &mut sqlx::SqliteConnection, event: AccountEvent, record: &RecordedEvent)
///         -> Result<(), HandlerError> {
///         let AccountEvent::Deposited { amount } = event;
///         sqlx::query("INSERT INTO balances (account, balance) VALUES (?1, ?2) \
///                      ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance")
///             .bind(record.stream_id.as_str()).bind(amount).execute(tx).await?;
///         Ok(())
///     }
///     async fn reset(&self, tx: &mut sqlx::SqliteConnection) -> Result<(), HandlerError> {
///         sqlx::query("DELETE FROM balances").execute(tx).await?;
///         Ok(())
///     }
/// }
///
/// # #[allow(dead_code)]
/// # async fn f(store: SqliteEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// sqlx::query("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
///     .execute(store.writer()).await?;
/// let running = ProjectionRunner::new(store.clone())
///     .with(SqliteProjectionWorker::new(&store, Balances, ProjectionOptions::default()))
///     .start();
/// # running.shutdown().await;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait SqliteProjection: Send + Sync + 'static {
    /// The events it reads.
    type Event: DomainEvent;

    /// Its unique name.
    fn name(&self) -> &str;

    /// The stream categories it reads: by default its event type's
    /// [`DomainEvent::CATEGORIES`](es_core::DomainEvent::CATEGORIES) (empty: every category).
    fn categories(&self) -> &[&str] {
        Self::Event::CATEGORIES
    }

    /// Applies one event, writing through `tx`: the writer connection inside the batch's transaction. Do not
    /// commit it.
    ///
    /// # Errors
    /// Any error: the batch rolls back, and the runner retries, then applies the failure policy.
    async fn handle(
        &self,
        tx: &mut SqliteConnection,
        event: Self::Event,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError>;

    /// The tables of its read model, when the worker is to own them (created before the first batch, emptied for a
    /// rebuild, rebuilt when their version rises: see [`ReadModel`]). By default `None`: the tables are the
    /// application's, and [`reset`](Self::reset) empties them.
    fn read_model(&self) -> Option<ReadModel> {
        None
    }

    /// Applies a batch of events, in order, writing through `tx` (the batch's transaction, which also moves the
    /// checkpoint: do not commit it). By default it calls [`handle`](Self::handle) for each event; override it to
    /// write the whole batch with fewer statements (one multi-row `INSERT ... ON CONFLICT`).
    ///
    /// When it fails, the worker rolls the batch back and applies its events again one at a time (each as a batch
    /// of one), in a new transaction, to find the event that fails: the events before it are kept, and the failure
    /// policy applies to that event alone. Events are in the feed's order, so each stream's are in stream order.
    ///
    /// # Errors
    /// Any error: as for [`handle`](Self::handle).
    async fn handle_batch(
        &self,
        tx: &mut SqliteConnection,
        events: Vec<(Self::Event, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        for (event, record) in events {
            self.handle(tx, event, record).await?;
        }
        Ok(())
    }

    /// Empties the read model for a rebuild, in the transaction that deletes the checkpoint. Not implemented, it
    /// returns [`NoReset`](es_core::projection::NoReset) and a rebuild is refused, nothing changed — unless the
    /// handlers are [`idempotent`](Self::idempotent).
    ///
    /// # Errors
    /// Any error: the rebuild is refused and nothing changes.
    async fn reset(&self, tx: &mut SqliteConnection) -> Result<(), HandlerError> {
        let _ = tx;
        Err(Box::new(es_core::projection::NoReset))
    }

    /// Whether applying an event it already applied changes nothing: then a rebuild may replay onto the read model
    /// as it is and a reset may move the checkpoint back. False by default.
    fn idempotent(&self) -> bool {
        false
    }
}
