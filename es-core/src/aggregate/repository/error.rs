//! [`RepositoryError`]: what a load or a command can fail with, and how a caller handles each.

use crate::event::EncodeError;
use crate::store::StreamId;
use crate::store::error::{EventDecodeError, StoreError, StreamIdError};

/// A command or load through the [`Repository`](crate::Repository) failed.
///
/// Each variant says how a caller should handle it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The aggregate rejected the command. Nothing was written. Handle: report it to the user (a 4xx).
    #[error("command rejected by `{stream}`: {source}")]
    Rejected {
        /// The aggregate's stream.
        stream: StreamId,
        /// The aggregate's domain error.
        #[source]
        source: E,
    },
    /// Other writers kept winning the race for the stream; nothing was written. Handle: retry later or report a
    /// 409.
    #[error("gave up on `{stream}` after {attempts} attempts lost to concurrent writers")]
    TooManyConflicts {
        /// The aggregate's stream.
        stream: StreamId,
        /// How many times the command was decided.
        attempts: u32,
        /// The last conflict.
        #[source]
        source: StoreError,
    },
    /// The aggregate id does not make a valid stream id. Handle: a 4xx, the id is bad.
    #[error("invalid aggregate id: {0}")]
    InvalidId(#[from] StreamIdError),
    /// A stored event did not decode into the aggregate's event type (a missing upcaster, an event of another
    /// type in the stream). Handle: an operator problem, not a user one.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// A new event did not encode. Handle: a bug in the event type.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The store failed. Handle: retrying the same command is safe only if the command is idempotent in the domain;
    /// the outcome of the failed append is unknown.
    #[error(transparent)]
    Store(#[from] StoreError),
}
