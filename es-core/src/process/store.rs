//! Durable process state and timers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::process::Timer;
use crate::store::error::StoreError;

/// One process instance as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProcessRecord {
    /// Its state, as JSON.
    pub state: serde_json::Value,
    /// Bumped on every save; saves compare it.
    pub version: u64,
    /// Keys of the inputs already handled (`event:<id>`, `timer:<name>:<deadline>`): a redelivered input is
    /// recognised and skipped.
    pub handled: Vec<String>,
}

/// One process instance with its pending timers, as an operator lists them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProcessInstance {
    /// The process manager.
    pub process: String,
    /// The instance (its correlation key).
    pub instance: String,
    /// Its stored state.
    pub record: ProcessRecord,
    /// Its timers, earliest first.
    pub timers: Vec<Timer>,
}

/// Timer changes saved with a process's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerChanges {
    /// Timers to set (replacing any of the same name).
    pub set: Vec<Timer>,
    /// Names of timers to remove (cancelled or fired).
    pub remove: Vec<String>,
}

/// A timer whose deadline has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueTimer {
    /// The instance that set it.
    pub instance: String,
    /// The timer.
    pub timer: Timer,
}

/// Stores process instances and their timers. Implemented by every store: memory, PostgreSQL and SQLite.
///
/// ```
/// use es_core::process::{ProcessRecord, ProcessStore, TimerChanges};
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let record = ProcessRecord { state: serde_json::json!({}), version: 1, handled: vec!["event:1".into()] };
/// store.save_process("order-process", "o-1", None, record.clone(), TimerChanges::default()).await?;
/// assert_eq!(store.load_process("order-process", "o-1").await?, Some(record));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ProcessStore: Send + Sync {
    /// The stored instance, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn load_process(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Option<ProcessRecord>, StoreError>;

    /// Saves `record` and applies `timers`, atomically, if the stored version is `expected` (`None`: no record).
    ///
    /// # Errors
    /// [`StoreError::ProcessConflict`] when another writer saved first; [`StoreError::Backend`].
    async fn save_process(
        &self,
        process: &str,
        instance: &str,
        expected: Option<u64>,
        record: ProcessRecord,
        timers: TimerChanges,
    ) -> Result<(), StoreError>;

    /// Up to `limit` timers of `process` due at `now`, earliest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn due_timers(
        &self,
        process: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StoreError>;

    /// Up to `limit` instances, of `process` or of every process, by process then instance, with their timers.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn list_processes(
        &self,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProcessInstance>, StoreError>;
}
