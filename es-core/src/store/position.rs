//! Positions in the global order of all events.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A position in the global order of all events in a store: what projections checkpoint.
///
/// The one hard rule: **a reader that has seen position `P` never later finds an event before `P`.**
/// A position is a pair compared in order, `commit` first, like KurrentDB's `$all` position. PostgreSQL stores the
/// transaction id in `commit` and the global sequence number in `prepare`; the in-memory store puts its sequence
/// number in both. Positions from different stores are not comparable.
///
/// The names are KurrentDB's, kept so the pair reads the same across backends; on PostgreSQL read them as
/// `commit` = the writing transaction's id (`events.transaction_id`, `xid8`) and `prepare` = the event's sequence
/// number (`events.global_position`). Readers order by the pair and stop below the oldest transaction still
/// running, which is why no reader skips an event that commits late. Checkpoint the whole pair; the text form
/// `commit/prepare` is what the status, dead letters and `wait_for` show.
///
/// ```
/// use es_core::Position;
///
/// let a = Position::new(7, 10);
/// let b = Position::new(8, 9);
/// assert!(a < b); // the commit half decides first
/// assert!(Position::START < a);
/// assert_eq!(a.to_string(), "7/10");
/// assert_eq!("7/10".parse::<Position>(), Ok(a));
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Position {
    /// The commit half, compared first (a transaction id on PostgreSQL).
    pub commit: u64,
    /// The prepare half, compared second (the global sequence number).
    pub prepare: u64,
}

impl Position {
    /// Before the first event: read from here to read everything.
    pub const START: Position = Position {
        commit: 0,
        prepare: 0,
    };

    /// A position from its two halves.
    pub const fn new(commit: u64, prepare: u64) -> Self {
        Self { commit, prepare }
    }

    /// The position right before this one: `read_all(p.before(), 1)` reads the event at `p`.
    ///
    /// ```
    /// use es_core::Position;
    ///
    /// assert_eq!(Position::new(7, 10).before(), Position::new(7, 9));
    /// assert_eq!(Position::new(7, 0).before(), Position::new(6, u64::MAX));
    /// assert_eq!(Position::START.before(), Position::START);
    /// ```
    pub const fn before(self) -> Self {
        match (self.commit, self.prepare) {
            (_, 1..) => Self::new(self.commit, self.prepare - 1),
            (1.., 0) => Self::new(self.commit - 1, u64::MAX),
            (0, 0) => Self::START,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.commit, self.prepare)
    }
}

/// The text was not a position written as `commit/prepare`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a position; expected `commit/prepare`, two unsigned integers")]
pub struct ParsePositionError {
    /// The text that failed to parse.
    pub text: String,
}

impl std::str::FromStr for Position {
    type Err = ParsePositionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParsePositionError {
            text: text.to_owned(),
        };
        let (commit, prepare) = text.split_once('/').ok_or_else(error)?;
        Ok(Self {
            commit: commit.parse().map_err(|_| error())?,
            prepare: prepare.parse().map_err(|_| error())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_text() {
        for text in ["", "1", "1/", "/2", "a/2", "1/2/3", "-1/2"] {
            assert!(text.parse::<Position>().is_err(), "{text}");
        }
    }
}
