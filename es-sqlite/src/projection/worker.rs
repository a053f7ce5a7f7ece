//! [`SqliteProjectionWorker`]: a [`SqliteProjection`] run exactly once per event, under the lease.

use std::time::Duration;

use es_core::backend::TransactionalWorker;
use es_core::projection::ProjectionOptions;

use super::SqliteProjection;
use super::backend::SqliteBackend;
use crate::SqliteEventStore;

/// Runs a [`SqliteProjection`] for a [`ProjectionRunner`](es_core::ProjectionRunner): each batch, its read-model
/// writes and the checkpoint's compare-and-set in one `BEGIN IMMEDIATE` transaction. One process at a time runs
/// it: the active worker holds a lease in the file (10 s by default, renewed by each batch and every third of it
/// when idle); the others stand by and take over when the lease runs out. A batch holds the file's write lock while
/// it runs: keep batches short when appends must stay fast.
///
/// It is [`TransactionalWorker`] (the exactly-once worker every transactional store shares) on SQLite: the lease,
/// the transaction and the statements are this crate's.
#[derive(Debug)]
pub struct SqliteProjectionWorker<P> {
    inner: TransactionalWorker<SqliteBackend<P>>,
}

es_core::transactional_worker!(SqliteProjectionWorker<P: SqliteProjection>, inner);

impl<P: SqliteProjection> SqliteProjectionWorker<P> {
    /// A worker for `projection` on `store`'s file.
    pub fn new(store: &SqliteEventStore, projection: P, options: ProjectionOptions) -> Self {
        let name = projection.name().to_owned();
        let model = projection.read_model().map(|model| model.validated(&name));
        let backend = SqliteBackend {
            store: store.clone(),
            name,
            projection,
            owner: format!(
                "pid {} ({})",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            lease: Duration::from_secs(10),
            standby_poll: Duration::from_secs(1),
            tx: None,
            model,
        };
        Self {
            inner: TransactionalWorker::new(backend, options),
        }
    }

    /// How long the lease lasts without a renewal (10 s by default, at least 1 s): how soon a standby takes over
    /// from a process that died or hangs.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.inner.backend_mut().lease = lease.max(Duration::from_secs(1));
        self
    }

    /// How often a standby tries to take the lease (1 s by default).
    pub fn standby_poll(mut self, poll: Duration) -> Self {
        self.inner.backend_mut().standby_poll = poll;
        self
    }
}
