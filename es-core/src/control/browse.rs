//! What an operator browses that the store traits do not cover: the streams, and which migrations a store has.
//! Backends list them (`PgEventStore::streams`, `SqliteEventStore::streams`, ...); the `es` CLI shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A stream as listed: its id, current version and when it was created and last written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    /// The stream.
    pub stream_id: String,
    /// Its current version (its event count).
    pub version: u64,
    /// When its first event was appended.
    pub created_at: DateTime<Utc>,
    /// When its last event was appended.
    pub updated_at: DateTime<Utc>,
}

/// One migration of a store's tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Migration {
    /// Its version (the file's timestamp).
    pub version: i64,
    /// What it does.
    pub description: String,
}

/// Which of this build's migrations the store has, and any it has that this build does not know (a newer build
/// migrated it: do not run an older one against it).
///
/// ```
/// use es_core::control::MigrationStatus;
///
/// let status = MigrationStatus::of([(1, "store"), (2, "snapshots")], vec![(1, "store".to_owned())]);
/// assert_eq!(status.pending.len(), 1);
/// assert!(!status.is_current());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// Applied.
    pub applied: Vec<Migration>,
    /// Not applied yet: run `migrate`.
    pub pending: Vec<Migration>,
    /// Applied, but unknown to this build.
    pub unknown: Vec<Migration>,
}

impl MigrationStatus {
    /// The status of a store that has `applied` (version, description), against the `known` migrations of this
    /// build.
    pub fn of<'a>(
        known: impl IntoIterator<Item = (i64, &'a str)>,
        applied: Vec<(i64, String)>,
    ) -> Self {
        let mut status = Self::default();
        let known: Vec<(i64, &str)> = known.into_iter().collect();
        for (version, description) in &known {
            let migration = Migration {
                version: *version,
                description: (*description).to_owned(),
            };
            match applied.iter().any(|(v, _)| v == version) {
                true => status.applied.push(migration),
                false => status.pending.push(migration),
            }
        }
        status.unknown = applied
            .into_iter()
            .filter(|(v, _)| known.iter().all(|(k, _)| k != v))
            .map(|(version, description)| Migration {
                version,
                description,
            })
            .collect();
        status
    }

    /// Nothing pending, nothing unknown.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}
