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

/// Whether `error` says the connection itself is gone (the server restarted, the backend was terminated, the
/// network dropped), rather than anything about the statement.
pub(crate) fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        // The server's goodbye, read on the next use of a connection it closed: a connection exception (class
        // 08), or the backend terminated by a shutdown, a crash or an operator (57P01, 57P02, 57P03, 57P05).
        sqlx::Error::Database(_) => sqlstate(error).is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "57P05")
        }),
        _ => false,
    }
}

/// Runs a read again while it fails on a lost connection, at most once per pooled connection and once more. The
/// pool does not ping a connection before handing it out (a round trip per query), so after a server restart each
/// idle connection fails once, here, and is replaced; only reads and other statements safe to repeat use this.
pub(crate) async fn retrying<T, F, Fut>(pool: &sqlx::PgPool, mut query: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let attempts = pool.options().get_max_connections() + 1;
    let mut attempt = 1;
    loop {
        match query().await {
            Err(error) if connection_lost(&error) && attempt < attempts => {
                tracing::debug!(%error, attempt, "connection lost; reading again on another");
                attempt += 1;
            }
            other => return other,
        }
    }
}
