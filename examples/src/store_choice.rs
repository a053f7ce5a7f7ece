//! Where an example keeps its events: in memory (no flag), on PostgreSQL (`--database-url URL`), or in a SQLite
//! file (`--sqlite FILE`).

use std::path::{Path, PathBuf};

use es_core::{EventStore, Position, StoreError};
use es_sqlite::{SqliteEventStore, SqliteSetupError};

/// The store an example runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// In memory: gone when the example ends.
    Memory,
    /// PostgreSQL at this URL.
    Postgres(String),
    /// The SQLite file at this path: created on the first run; the next run continues its history.
    Sqlite(PathBuf),
}

impl StoreChoice {
    /// The arguments [`StoreChoice::from_args`] reads, for a usage line.
    pub const USAGE: &'static str = "[--database-url URL | --sqlite FILE]";

    /// Reads the arguments after the program's name: none, `--database-url URL` or `--sqlite FILE`. With none,
    /// `fallback_url` (an environment variable's value) picks PostgreSQL.
    ///
    /// ```
    /// use examples::store_choice::StoreChoice;
    ///
    /// let args = ["--sqlite".to_owned(), "bank.db".to_owned()];
    /// assert_eq!(StoreChoice::from_args(args, None), Ok(StoreChoice::Sqlite("bank.db".into())));
    /// assert_eq!(StoreChoice::from_args([], None), Ok(StoreChoice::Memory));
    /// ```
    ///
    /// # Errors
    /// [`StoreChoice::USAGE`], for any other arguments.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        fallback_url: Option<String>,
    ) -> Result<Self, &'static str> {
        let mut args = args.into_iter();
        match (args.next().as_deref(), args.next(), args.next()) {
            (None, _, _) => Ok(fallback_url.map_or(Self::Memory, Self::Postgres)),
            (Some("--database-url"), Some(url), None) => Ok(Self::Postgres(url)),
            (Some("--sqlite"), Some(file), None) => Ok(Self::Sqlite(file.into())),
            _ => Err(Self::USAGE),
        }
    }
}

/// Why [`open_sqlite`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file would not open or migrate.
    #[error(transparent)]
    Setup(#[from] SqliteSetupError),
    /// It opened, but would not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens (or creates) the store in `file` and says how many events earlier runs left in it.
///
/// # Errors
/// When the file cannot be opened, migrated or read.
pub async fn open_sqlite(file: &Path) -> Result<SqliteEventStore, OpenError> {
    let store = SqliteEventStore::open(file).await?;
    let earlier = store.count_after(Position::START).await?;
    println!(
        "Store: SQLite, file `{}` ({earlier} events from earlier runs).\n",
        file.display()
    );
    Ok(store)
}

/// A suffix that makes this run's ids differ from an earlier run's on the same database: `-` and 8 hex digits.
pub fn run_suffix() -> String {
    format!("-{}", &uuid::Uuid::now_v7().simple().to_string()[24..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn reads_each_store_and_refuses_anything_else() {
        assert_eq!(
            StoreChoice::from_args(args(&["--database-url", "postgres://x"]), None),
            Ok(StoreChoice::Postgres("postgres://x".into()))
        );
        assert_eq!(
            StoreChoice::from_args(args(&[]), Some("postgres://env".into())),
            Ok(StoreChoice::Postgres("postgres://env".into()))
        );
        assert_eq!(
            StoreChoice::from_args(args(&["--sqlite", "a.db"]), Some("postgres://env".into())),
            Ok(StoreChoice::Sqlite("a.db".into()))
        );
        for wrong in [
            &["--sqlite"][..],
            &["--sqlite", "a.db", "b.db"],
            &["bank.db"],
        ] {
            assert!(
                StoreChoice::from_args(args(wrong), None).is_err(),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn run_suffixes_differ() {
        assert_ne!(run_suffix(), run_suffix());
        assert_eq!(run_suffix().len(), 9);
    }
}
