//! Why a command failed, and the exit code that says so.

use std::process::ExitCode;

/// A command's failure; each kind has its own exit code (listed in `es --help`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] es_core::StoreError),
    /// The store could not be opened.
    #[error(transparent)]
    Setup(#[from] es_postgres::PgSetupError),
    /// The SQLite file could not be opened.
    #[error(transparent)]
    SqliteSetup(#[from] es_sqlite::SqliteSetupError),
    /// Something else went wrong on the way (the terminal, the listener).
    #[error("{0}")]
    Io(String),
    /// The command cannot run as asked.
    #[error("{0}")]
    Usage(String),
    /// The projection's instance refused.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Nobody answered in time.
    #[error("{0}")]
    TimedOut(String),
    /// What was asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The schema check found problems (already printed).
    #[error("the schema check found problems")]
    SchemaProblems,
}

impl Failure {
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Store(_) | Self::Setup(_) | Self::SqliteSetup(_) | Self::Io(_) => 1,
            Self::Usage(_) => 2,
            Self::Rejected(_) => 3,
            Self::TimedOut(_) => 4,
            Self::NotFound(_) => 5,
            Self::SchemaProblems => 6,
        })
    }
}
