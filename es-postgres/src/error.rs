//! Errors of setting the store up, and the mapping of database errors to `StoreError`.

use es_core::StoreError;

/// Setting up a [`PgEventStore`](crate::PgEventStore) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgSetupError {
    /// The schema name was refused. Fix the configuration.
    #[error("invalid schema name `{name}`: {reason}")]
    InvalidSchemaName {
        /// The name, escaped for display.
        name: String,
        /// The rule it broke.
        reason: String,
    },
    /// The database URL does not parse.
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The store was built outside a Tokio runtime; it needs one for its notification task.
    #[error("PgEventStore must be built inside a Tokio runtime")]
    NoRuntime,
    /// The database could not be reached.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// A migration failed; the schema is left as the last successful migration made it.
    #[error("migrating schema `{schema}` failed")]
    Migrate {
        /// The schema.
        schema: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Wraps a database error as the backend failure of `operation`.
pub(crate) fn backend(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Backend {
        operation,
        source: Box::new(source),
    }
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}
