//! Reading a stream: which way, from where, how many.

use crate::store::Version;

/// The direction of a stream read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// Which events of a stream to read: a direction, a starting version and a limit.
///
/// Forward reads start at version 1 unless told otherwise and return versions `>= from`; backward reads start at
/// the end and return versions `<= from`, newest first.
///
/// ```
/// use es_core::{StreamRead, Version};
/// use es_core::store::Direction;
///
/// let read = StreamRead::forward().from(Version::new(10)).limit(100);
/// assert_eq!(read.direction, Direction::Forward);
/// assert_eq!(read.from, Some(Version::new(10)));
/// assert_eq!(read.limit, 100);
///
/// let last = StreamRead::backward().limit(1); // the newest event
/// assert_eq!(last.from, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamRead {
    /// Forward or backward.
    pub direction: Direction,
    /// The first version to return; `None` is the start (forward) or the end (backward).
    pub from: Option<Version>,
    /// The most events to return.
    pub limit: usize,
}

impl StreamRead {
    /// Every event, oldest first.
    pub const fn forward() -> Self {
        Self {
            direction: Direction::Forward,
            from: None,
            limit: usize::MAX,
        }
    }

    /// Every event, newest first.
    pub const fn backward() -> Self {
        Self {
            direction: Direction::Backward,
            from: None,
            limit: usize::MAX,
        }
    }

    /// Starts at `version` (inclusive).
    pub const fn from(mut self, version: Version) -> Self {
        self.from = Some(version);
        self
    }

    /// Returns at most `limit` events.
    pub const fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}
