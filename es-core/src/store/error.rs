//! Errors at the boundaries of the core: stream ids, event encoding, stores.
//!
//! The repository's error, which adds the aggregate's own domain error, is
//! [`RepositoryError`](crate::RepositoryError).

use crate::event::DecodeError;
use crate::store::{EventId, ExpectedVersion, Position, StreamId, Version};

/// A stream id was rejected. Fix the id: retrying will not help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamIdError {
    /// The id (or the category or id it was built from) is empty.
    #[error("invalid stream id: it is empty")]
    Empty,
    /// The id is too long.
    #[error("invalid stream id: {len} bytes, at most {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a control character.
    #[error("invalid stream id `{stream}`: control character at byte {index}")]
    ControlCharacter {
        /// The id, escaped for display.
        stream: String,
        /// The byte offset of the first control character.
        index: usize,
    },
}

/// A stored event did not decode: names the event (stream, version, position, type) and why.
///
/// Usually a deploy problem: an event type was renamed or its schema changed without an upcaster.
#[derive(Debug, thiserror::Error)]
#[error(
    "event {stream}@{version} (position {position}, type `{event_type}` v{schema_version}) does not decode: {source}"
)]
pub struct EventDecodeError {
    /// The stream.
    pub stream: StreamId,
    /// The event's version in the stream.
    pub version: Version,
    /// The event's global position.
    pub position: Position,
    /// The stored type name.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// Why it failed.
    #[source]
    pub source: DecodeError,
}

/// A stored event row that does not read back: what could be read of it, and why the rest could not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "corrupt stored event {stream:?}@{version} (position {position}, id {event_id}, type {event_type:?}): {reason}"
)]
pub struct CorruptEvent {
    /// Its global position.
    pub position: Position,
    /// Its stream id as stored (it may be what is wrong: empty, or with control characters).
    pub stream: String,
    /// Its version in the stream (0 when that did not read).
    pub version: Version,
    /// Its id.
    pub event_id: EventId,
    /// Its stored type name (empty when that did not read).
    pub event_type: String,
    /// What is wrong.
    pub reason: String,
}

/// Why an append's event id was refused as a duplicate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DuplicateReason {
    /// The same id appears twice in the batch.
    RepeatedInBatch,
    /// The id is already stored in another stream.
    StoredInOtherStream(StreamId),
    /// The id is stored in this stream, but at a version the given expectation could not have written it at, or
    /// not in the order of the batch.
    StoredAtOtherVersion(Version),
    /// Some ids of the batch are stored and others are not: not a retry of one earlier append.
    PartOfBatchStored,
}

impl std::fmt::Display for DuplicateReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RepeatedInBatch => f.write_str("it appears twice in the batch"),
            Self::StoredInOtherStream(stream) => write!(f, "it is stored in stream `{stream}`"),
            Self::StoredAtOtherVersion(version) => write!(
                f,
                "it is stored at version {version}, which this append could not have written"
            ),
            Self::PartOfBatchStored => {
                f.write_str("some ids of the batch are stored and others are not")
            }
        }
    }
}

/// An event store operation failed.
///
/// Each variant says how a caller should handle it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream is not at the expected version: someone else appended first. Nothing was written.
    ///
    /// Handle: reload, decide again, append with the new version ([`Repository`](crate::Repository) does this), or
    /// report a 409 to the client.
    #[error("conflict on stream `{stream}`: expected {expected}, but it is {}", match actual { Some(v) => format!("at version {v}"), None => "missing".to_owned() })]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version; `None` when it does not exist.
        actual: Option<Version>,
    },
    /// Streams of a [`MultiAppend`](crate::store::MultiAppend) were not at their expected versions. Nothing was
    /// written to any stream.
    ///
    /// Handle: reload every stream named, decide again, append again
    /// ([`Repository::execute_many`](crate::Repository::execute_many) does this), or report a 409.
    #[error("conflict on {} stream(s): {}", conflicts.len(), conflicts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Conflicts {
        /// Every stream whose expectation failed, with its actual version.
        conflicts: Vec<crate::store::StreamConflict>,
    },
    /// An append's [`AppendCondition`](crate::store::AppendCondition) failed: an event matching its query was
    /// stored after the position the decision read. Nothing was written.
    ///
    /// Handle: read the query again, decide again, append again
    /// (`es_core::aggregate::Decisions::execute` does this), or report a 409.
    #[error(
        "append condition failed: an event of type `{event_type}` in stream `{stream}` at {position} matches the query after {}",
        fmt_position(after)
    )]
    ConditionFailed {
        /// Where the decision's read stood.
        after: Option<Position>,
        /// A matching event after it: its position.
        position: Position,
        /// Its stream.
        stream: StreamId,
        /// Its type.
        event_type: String,
    },
    /// A [`MultiAppend`](crate::store::MultiAppend) named no stream to append to. Nothing was written.
    #[error("a multi-stream append needs at least one stream to append to")]
    NothingToAppend,
    /// A [`MultiAppend`](crate::store::MultiAppend) named a stream twice (written or checked). Nothing was
    /// written.
    #[error("a multi-stream append names stream `{stream}` twice")]
    StreamRepeated {
        /// The stream.
        stream: StreamId,
    },
    /// An event id of the batch is already used in a way that makes this append not a retry of an earlier one.
    /// Nothing was written.
    ///
    /// Handle: a bug in the caller (reused ids); do not retry with the same ids.
    #[error("duplicate event id {event_id} in append to stream `{stream}`: {reason}")]
    DuplicateEventId {
        /// The stream appended to.
        stream: StreamId,
        /// The first offending id.
        event_id: EventId,
        /// Why it was refused.
        reason: DuplicateReason,
    },
    /// The batch held no event. Nothing was written and no stream was created.
    #[error("empty append to stream `{stream}`: a batch needs at least one event")]
    EmptyAppend {
        /// The stream.
        stream: StreamId,
    },
    /// An event of the batch was refused as it is (a schema version out of range, a payload the backend cannot
    /// store). Nothing was written.
    #[error(
        "invalid event {event_id} (type `{event_type}`) in append to stream `{stream}`: {reason}"
    )]
    InvalidEvent {
        /// The stream.
        stream: StreamId,
        /// The event's id.
        event_id: EventId,
        /// The event's type name.
        event_type: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint was not where the caller expected it: another instance of the same reader moved it. Nothing
    /// was written.
    ///
    /// Handle: stop this instance; the other one owns the reader.
    #[error(
        "checkpoint `{name}` is at {}, not at {}",
        fmt_position(actual),
        fmt_position(expected)
    )]
    CheckpointConflict {
        /// The reader's name.
        name: String,
        /// Where the caller believed it was.
        expected: Option<Position>,
        /// Where it is.
        actual: Option<Position>,
    },
    /// A process instance was saved by another writer since it was loaded. Nothing was written.
    ///
    /// Handle: load it again and redo the step (the process runner does).
    #[error("process `{process}` instance `{instance}` was changed by another writer")]
    ProcessConflict {
        /// The process.
        process: String,
        /// The instance.
        instance: String,
    },
    /// A snapshot was refused as it is. Nothing was written.
    #[error("invalid snapshot `{snapshot_type}` of stream `{stream}`: {reason}")]
    InvalidSnapshot {
        /// The stream.
        stream: StreamId,
        /// The snapshot type.
        snapshot_type: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored row could not be read back into an event (a corrupted row, a schema edited by hand). Reads report
    /// it in its place in the global order: `read_all` returns the events before it, then this error; read after
    /// its position to go on. Projections apply their failure policy to it.
    #[error(transparent)]
    Corrupt(Box<CorruptEvent>),
    /// A stored row of a stream could not be read back while folding it (named by stream and version: a load
    /// reads no positions). A corrupted row, or a schema edited by hand.
    #[error("corrupt event {stream}@{version}: {reason}")]
    CorruptStream {
        /// The stream.
        stream: StreamId,
        /// The version of the row (0 when the version itself did not read).
        version: Version,
        /// What is wrong.
        reason: String,
    },
    /// Another writer held the stream for longer than the store waits for it (a writer stopped in the middle of
    /// its append transaction: a paused or hung process, a client that left a transaction open). Nothing was
    /// written. Appends to other streams are not held up meanwhile.
    ///
    /// Handle: retry later with the same event ids (safe: appends are idempotent by event id), or report a 503.
    /// On PostgreSQL the bound is `PgEventStoreBuilder::stream_lock_timeout` (default 5 s).
    #[error(
        "stream `{stream}` is held by another writer's transaction; waited {waited:?}, nothing written: retry later"
    )]
    StreamLocked {
        /// The stream.
        stream: StreamId,
        /// How long this append waited for it.
        waited: std::time::Duration,
    },
    /// The backend failed (connection lost, database error). Whether the operation took effect is unknown for an
    /// append: retry it with the same event ids, and the store's idempotency makes the retry safe.
    #[error("event store backend failed during {operation}: {source}")]
    Backend {
        /// The operation that failed (`append`, `read_all`, ...).
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn fmt_position(position: &Option<Position>) -> String {
    position.map_or_else(|| "none".to_owned(), |p| p.to_string())
}
