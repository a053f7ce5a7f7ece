//! Stream versions and the expectation an append checks them against.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version of a stream: the number of events in it, so the version of its last event.
///
/// Versions are 1-based: the first event of a stream has version 1, and an empty or missing stream is at
/// [`Version::INITIAL`] (0).
///
/// ```
/// use es_core::Version;
///
/// let v = Version::new(3);
/// assert_eq!(v.get(), 3);
/// assert_eq!(v.next(), Version::new(4));
/// assert_eq!(Version::INITIAL.get(), 0);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of an empty or missing stream.
    pub const INITIAL: Version = Version(0);

    /// A version from its number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Version {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

/// What an append expects the stream's current version to be (optimistic concurrency).
///
/// ```
/// use es_core::{ExpectedVersion, Version};
///
/// assert!(ExpectedVersion::Any.accepts(None));
/// assert!(ExpectedVersion::NoStream.accepts(None));
/// assert!(!ExpectedVersion::NoStream.accepts(Some(Version::new(1))));
/// assert!(ExpectedVersion::StreamExists.accepts(Some(Version::new(1))));
/// assert!(ExpectedVersion::Exact(Version::new(2)).accepts(Some(Version::new(2))));
/// // Exact(0) is the same as NoStream.
/// assert!(ExpectedVersion::Exact(Version::INITIAL).accepts(None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check: append at the end, whatever the version.
    Any,
    /// The stream must not exist yet (no event in it).
    NoStream,
    /// The stream must exist (hold at least one event).
    StreamExists,
    /// The stream must be at exactly this version; `Exact(Version::INITIAL)` behaves as [`NoStream`](Self::NoStream).
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` (`None`: the stream does not exist) satisfies this expectation.
    pub fn accepts(self, actual: Option<Version>) -> bool {
        let current = actual.unwrap_or(Version::INITIAL);
        match self {
            Self::Any => true,
            Self::NoStream => current == Version::INITIAL,
            Self::StreamExists => current > Version::INITIAL,
            Self::Exact(expected) => current == expected,
        }
    }

    /// Whether events first stored at `first_version` fit this expectation, i.e. whether an append made with it
    /// could have written them there. Used to accept a retried append as a replay.
    ///
    /// ```
    /// use es_core::{ExpectedVersion, Version};
    ///
    /// assert!(ExpectedVersion::NoStream.fits_first_version(Version::new(1)));
    /// assert!(ExpectedVersion::Exact(Version::new(4)).fits_first_version(Version::new(5)));
    /// assert!(!ExpectedVersion::Exact(Version::new(4)).fits_first_version(Version::new(6)));
    /// assert!(ExpectedVersion::StreamExists.fits_first_version(Version::new(2)));
    /// assert!(ExpectedVersion::Any.fits_first_version(Version::new(9)));
    /// ```
    pub fn fits_first_version(self, first_version: Version) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => first_version == Version::new(1),
            Self::StreamExists => first_version > Version::new(1),
            Self::Exact(expected) => first_version == expected.next(),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}
