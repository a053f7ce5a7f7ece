//! Stream identifiers.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::error::StreamIdError;

/// The name of one event stream, validated.
///
/// An aggregate's stream is named `category-id` (`account-42`), see [`StreamId::for_aggregate`].
/// A stream id is non-empty, at most [`StreamId::MAX_LEN`] bytes and holds no control characters.
/// Cloning is cheap (a reference count).
///
/// ```
/// use es_core::StreamId;
///
/// let id = StreamId::new("account-42")?;
/// assert_eq!(id.as_str(), "account-42");
/// assert_eq!(id.category(), "account");
/// assert!(StreamId::new("").is_err());
/// assert!(StreamId::new("bad\nid").is_err());
/// # Ok::<(), es_core::store::StreamIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// The longest stream id accepted, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates `value` as a stream id.
    ///
    /// # Errors
    /// [`StreamIdError`] when `value` is empty, longer than [`StreamId::MAX_LEN`] bytes, or holds a control
    /// character.
    pub fn new(value: impl AsRef<str>) -> Result<Self, StreamIdError> {
        let value = value.as_ref();
        if value.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(StreamIdError::TooLong {
                len: value.len(),
                max: Self::MAX_LEN,
            });
        }
        if let Some(index) = value.find(char::is_control) {
            return Err(StreamIdError::ControlCharacter {
                stream: value.escape_debug().to_string(),
                index,
            });
        }
        Ok(Self(Arc::from(value)))
    }

    /// The stream of the aggregate `id` in `category`: `category-id`.
    ///
    /// ```
    /// use es_core::StreamId;
    ///
    /// let id = StreamId::for_aggregate("account", "42")?;
    /// assert_eq!(id.as_str(), "account-42");
    /// # Ok::<(), es_core::store::StreamIdError>(())
    /// ```
    ///
    /// # Errors
    /// [`StreamIdError`] when either part is empty or the result is not a valid stream id.
    pub fn for_aggregate(category: &str, id: &str) -> Result<Self, StreamIdError> {
        if category.is_empty() || id.is_empty() {
            return Err(StreamIdError::Empty);
        }
        Self::new(format!("{category}-{id}"))
    }

    /// The stream id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aggregate's id: the part after the first `-` (`account-42` → `42`); `None` when there is no `-`.
    ///
    /// ```
    /// use es_core::StreamId;
    ///
    /// assert_eq!(StreamId::new("account-42")?.aggregate_id(), Some("42"));
    /// assert_eq!(StreamId::new("order-2026-0007")?.aggregate_id(), Some("2026-0007"));
    /// assert_eq!(StreamId::new("audit")?.aggregate_id(), None);
    /// # Ok::<(), es_core::store::StreamIdError>(())
    /// ```
    pub fn aggregate_id(&self) -> Option<&str> {
        self.0.split_once('-').map(|(_, id)| id)
    }

    /// The category: the part before the first `-`, or the whole id when it has none.
    pub fn category(&self) -> &str {
        category_of(&self.0)
    }
}

/// The category of a stream id given as text (a stored one that may not be a valid [`StreamId`]): the part before
/// the first `-`, or the whole text.
pub(crate) fn category_of(stream: &str) -> &str {
    stream
        .split_once('-')
        .map_or(stream, |(category, _)| category)
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StreamId {
    type Error = StreamIdError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for StreamId {
    type Error = StreamIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_control_character_ids() {
        assert_eq!(StreamId::new(""), Err(StreamIdError::Empty));
        assert!(matches!(
            StreamId::new("x".repeat(256)),
            Err(StreamIdError::TooLong { len: 256, max: 255 })
        ));
        assert!(matches!(
            StreamId::new("a\tb"),
            Err(StreamIdError::ControlCharacter { index: 1, .. })
        ));
        assert!(StreamId::new("x".repeat(255)).is_ok());
    }

    #[test]
    fn aggregate_ids_join_category_and_id() {
        let id = StreamId::for_aggregate("order", "a-b").unwrap();
        assert_eq!(id.as_str(), "order-a-b");
        assert_eq!(id.category(), "order");
        assert_eq!(StreamId::for_aggregate("", "1"), Err(StreamIdError::Empty));
    }

    #[test]
    fn round_trips_through_json_and_validates_on_the_way_in() {
        let id = StreamId::new("s-1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"s-1\"");
        assert_eq!(serde_json::from_str::<StreamId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
    }
}
