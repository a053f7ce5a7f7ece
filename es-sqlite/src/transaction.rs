//! Write transactions: `BEGIN IMMEDIATE` on the store's one writer connection, rolled back when dropped
//! uncommitted, and the two ways every table module runs one ([`SqliteEventStore::in_write`],
//! [`SqliteEventStore::in_transaction`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::StoreError;
use sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::SqliteEventStore;
use crate::error::{backend, is_busy};

/// The store's writer connection, and whether a transaction is open on it.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) conn: SqliteConnection,
    pub(crate) open: bool,
}

/// A `BEGIN IMMEDIATE` transaction on the store's writer connection, which it holds until committed or dropped.
/// Dropped uncommitted (an error, or a caller's future cancelled), it is rolled back by a task that takes the
/// connection next, so the file's write lock is not left held; a [`SqliteEventStore::begin`] that gets there
/// first rolls it back itself.
#[derive(Debug)]
pub(crate) struct WriteTx {
    writer: OwnedMutexGuard<Writer>,
    lock: Arc<Mutex<Writer>>,
}

impl WriteTx {
    /// Commits it.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut self.writer.conn).await?;
        self.writer.open = false;
        Ok(())
    }
}

impl WriteTx {
    /// Rolls it back (dropped instead, a task rolls it back later).
    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("ROLLBACK")
            .execute(&mut self.writer.conn)
            .await?;
        self.writer.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.writer.open {
            return;
        }
        // The connection is free again once this guard is gone; whoever takes it next while `open` is still set
        // finds an abandoned transaction (a live one always holds the guard).
        let lock = Arc::clone(&self.lock);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut writer = lock.lock_owned().await;
                if writer.open {
                    match sqlx::query("ROLLBACK").execute(&mut writer.conn).await {
                        Ok(_) => writer.open = false,
                        Err(error) => tracing::warn!(
                            %error,
                            "rolling back an abandoned write failed; the next write tries again"
                        ),
                    }
                }
            });
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.writer.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.writer.conn
    }
}

/// Why a write transaction did not commit: SQLite, the caller's own typed error, or a lost lease (nothing was
/// written in each case).
#[derive(Debug)]
pub(crate) enum Failure {
    Db(sqlx::Error),
    Refused(StoreError),
    Lost(String),
}

impl Failure {
    pub(crate) fn into_store_error(self, operation: &'static str) -> StoreError {
        match self {
            Self::Db(error) => backend(operation)(error),
            Self::Refused(error) => error,
            Self::Lost(error) => StoreError::Backend {
                operation,
                source: error.into(),
            },
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Refused(error)
    }
}

impl SqliteEventStore {
    /// A `BEGIN IMMEDIATE` transaction on the writer connection, once this process's writes before it are done. Waits
    /// while another process holds the file's write lock: SQLite's busy timeout, then as long again.
    pub(crate) async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        let lock = Arc::clone(&self.inner.writer);
        let mut writer = Arc::clone(&lock).lock_owned().await;
        if writer.open {
            // A transaction left open by a caller that was cancelled (its future dropped) mid-way.
            sqlx::query("ROLLBACK").execute(&mut writer.conn).await?;
            writer.open = false;
        }
        // SQLite's busy handler waits up to the busy timeout inside one BEGIN; then it is tried again until twice the
        // timeout has passed since the first.
        let deadline = Instant::now() + self.inner.busy_timeout.saturating_mul(2);
        loop {
            match sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut writer.conn)
                .await
            {
                Err(error) if is_busy(&error) && Instant::now() < deadline => {
                    tracing::debug!(%error, "the file is locked by another writer; trying again");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(error) => return Err(error),
                Ok(_) => {
                    writer.open = true;
                    return Ok(WriteTx { writer, lock });
                }
            }
        }
    }

    /// Commits `tx`, mapping a failure of either to the store's error.
    pub(crate) async fn commit<T>(
        tx: WriteTx,
        operation: &'static str,
        result: Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let value = result.map_err(|failure| failure.into_store_error(operation))?;
        tx.commit().await.map_err(backend(operation))?;
        Ok(value)
    }

    /// Runs `body` on the connection of a write transaction and commits it; the body's failure, or the commit's,
    /// as the [`StoreError`] of `operation`.
    pub(crate) async fn in_write<T>(
        &self,
        operation: &'static str,
        body: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut tx = self.begin().await.map_err(backend(operation))?;
        let result = body(&mut tx).await;
        Self::commit(tx, operation, result).await
    }

    /// Like [`in_write`](Self::in_write), keeping the body's [`Failure`].
    pub(crate) async fn in_transaction<T>(
        &self,
        body: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut tx = self.begin().await?;
        let value = body(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }
}
