//! [`EventId`]: the client-chosen id that makes a retried append a replay.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The unique id of one event, chosen by the client so that a retried append is recognised as a replay.
///
/// New ids are UUIDv7 (time-ordered, which keeps database indexes compact).
///
/// ```
/// use es_core::EventId;
///
/// let a = EventId::new();
/// let b = EventId::new();
/// assert_ne!(a, b);
/// assert_eq!(EventId::from_uuid(a.as_uuid()), a);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh, time-ordered id (UUIDv7).
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// An id from a UUID the caller chose.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    pub const fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses the hyphenated UUID form [`Display`](fmt::Display) prints.
///
/// ```
/// use es_core::EventId;
/// let id = EventId::new();
/// assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
/// assert!("not-an-id".parse::<EventId>().is_err());
/// ```
impl std::str::FromStr for EventId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl From<Uuid> for EventId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}
