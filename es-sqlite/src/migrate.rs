//! Processes opening one file take turns to migrate it: sqlx's migrator has no lock on SQLite, and processes opening
//! a new file at once each created the tables ("table events already exists").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a process waits for another one to finish migrating the same file.
const MIGRATION_TURN_WAIT: Duration = Duration::from_secs(60);

/// This process's turn to migrate the file at `path`: an exclusive lock on `<path>.migrate-lock` (created when
/// missing, left in place), held until dropped; waits at most [`MIGRATION_TURN_WAIT`] for another process's turn.
pub(crate) async fn turn(path: &Path) -> std::io::Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".migrate-lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(name))?;
    let deadline = Instant::now() + MIGRATION_TURN_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("another process kept migrating this file for {MIGRATION_TURN_WAIT:?}"),
                ));
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error),
        }
    }
}
