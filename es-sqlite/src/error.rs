//! Errors of opening a store, and how SQLite's errors reach the store traits.

use std::path::PathBuf;

use es_core::StoreError;

/// Opening a store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteSetupError {
    /// The file could not be opened or created, or its settings (WAL, busy timeout) not applied.
    #[error("cannot open the SQLite event store at {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Its tables could not be created or brought up to date.
    #[error("cannot migrate the SQLite event store at {path}: {source}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// Maps a database error to [`StoreError::Backend`] naming the operation.
pub(crate) fn backend(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Backend {
        operation,
        source: Box::new(source),
    }
}

/// Whether the error is SQLite saying the file is locked by another writer (`SQLITE_BUSY`, `SQLITE_LOCKED`, and
/// their extended codes): worth waiting and trying again.
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6)),
        _ => false,
    }
}
