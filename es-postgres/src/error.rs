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
    /// The database could not be reached (or refused the connection) within the connect timeout.
    #[error("cannot connect to PostgreSQL at {host}:{port}: {}", Text(source))]
    Connect {
        /// The host from the URL.
        host: String,
        /// The port.
        port: u16,
        /// What failed (a timeout, a refused connection, an authentication failure).
        #[source]
        source: sqlx::Error,
    },
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
        source: Box::new(PgError::new(source)),
    }
}

/// A database error as the store reports it: the server's message (sqlx's text says only "error returned from
/// database") with its SQLSTATE, and a hint at the fix where one is known. Reach the sqlx error through
/// [`std::error::Error::source`].
///
/// ```no_run
/// use es_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
/// use es_postgres::{PgError, PgEventStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgEventStore::connect("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").await?;
/// // No `migrate()`: the append fails naming what is missing, with the fix.
/// let event = NewEvent::new("Opened", 1, serde_json::json!({}));
/// if let Err(StoreError::Backend { source, .. }) =
///     store.append(&StreamId::new("acct-1")?, ExpectedVersion::Any, vec![event]).await
/// {
///     assert!(source.is::<PgError>());
///     println!("{source}"); // relation "es.events" does not exist (SQLSTATE 42P01); hint: ... run `PgEventStore::migrate()`
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgError(sqlx::Error);

impl PgError {
    pub(crate) fn new(source: sqlx::Error) -> Self {
        Self(source)
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Text(&self.0).fmt(f)
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Shows a database error as [`PgError`] does.
struct Text<'e>(&'e sqlx::Error);

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            sqlx::Error::Database(db) => {
                f.write_str(db.message())?;
                if let Some(code) = db.code() {
                    write!(f, " (SQLSTATE {code})")?;
                }
            }
            other => write!(f, "{other}")?,
        }
        if let Some(hint) = hint(self.0) {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// What to do about `error`, where that is known.
fn hint(error: &sqlx::Error) -> Option<&'static str> {
    match sqlstate(error).as_deref() {
        // invalid_schema_name, undefined_table, undefined_function, undefined_column
        Some("3F000" | "42P01" | "42883" | "42703") => Some(
            "the store's tables or functions are missing or out of date: run `PgEventStore::migrate()`",
        ),
        Some("42501") => Some("the database role lacks a privilege on the store's schema"),
        Some("53300") => {
            Some("the server has no free connection: lower the pool size or raise max_connections")
        }
        _ => None,
    }
}

/// The text of a failed `operation`, for states and logs.
pub(crate) fn describe(operation: &str, error: &sqlx::Error) -> String {
    format!("{operation} failed: {}", Text(error))
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
        // 08), the backend terminated by a shutdown, a crash or an operator (57P01, 57P02, 57P03), or by a timeout
        // on a silent session (57P05 idle, 25P03 idle in a transaction).
        sqlx::Error::Database(_) => sqlstate(error).is_some_and(|code| {
            code.starts_with("08")
                || matches!(
                    code.as_str(),
                    "57P01" | "57P02" | "57P03" | "57P05" | "25P03"
                )
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
