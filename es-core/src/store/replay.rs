//! Recognising a retried append: the idempotency rule every backend applies the same way.

use crate::store::{
    DuplicateReason, EventId, ExpectedVersion, Position, StoreError, StreamId, Version,
};

/// Where an event id of a batch is already stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredAt<'a> {
    /// Its stream, as stored.
    pub stream: &'a str,
    /// Its version there.
    pub version: Version,
    /// Its global position.
    pub position: Position,
}

/// Whether a batch is a retry: `Ok(Some((first, last)))` with where its first and last events are stored when every
/// id is stored as a run this append could have written (a replay: write nothing, answer with those); `Ok(None)`
/// when no id is stored (a new batch); the typed error otherwise. `stored[i]` is where the batch's `i`th id is
/// stored, `current` the stream's version now.
///
/// A batch sent with an expectation that does not hold is a conflict (reload and decide again) whatever ids it
/// reuses; reused ids are duplicates only when the expectation would have held.
///
/// ```
/// use es_core::backend::{StoredAt, retry_of};
/// use es_core::{EventId, ExpectedVersion, Position, StreamId, Version};
///
/// let stream = StreamId::new("light-1")?;
/// let id = EventId::new();
/// let at = StoredAt { stream: "light-1", version: Version::new(1), position: Position::new(7, 7) };
/// let retry = retry_of(&stream, ExpectedVersion::NoStream, Some(Version::new(1)), &[id], &[Some(at)]);
/// assert_eq!(retry.ok().flatten(), Some((at, at)));
/// assert_eq!(retry_of(&stream, ExpectedVersion::Any, None, &[id], &[None]).ok().flatten(), None);
/// # Ok::<(), es_core::store::StreamIdError>(())
/// ```
///
/// # Errors
/// [`StoreError::DuplicateEventId`] (part of the batch stored, an id in another stream or at a version that does
/// not fit) or [`StoreError::Conflict`] when the expectation does not hold.
pub fn retry_of<'a>(
    stream: &StreamId,
    expected: ExpectedVersion,
    current: Option<Version>,
    ids: &[EventId],
    stored: &[Option<StoredAt<'a>>],
) -> Result<Option<(StoredAt<'a>, StoredAt<'a>)>, StoreError> {
    let duplicate = |event_id, reason| match expected.accepts(current) {
        true => StoreError::DuplicateEventId {
            stream: stream.clone(),
            event_id,
            reason,
        },
        false => StoreError::Conflict {
            stream: stream.clone(),
            expected,
            actual: current,
        },
    };
    let Some(first_stored) = ids.iter().zip(stored).find(|(_, at)| at.is_some()) else {
        return Ok(None);
    };
    let all: Option<Vec<StoredAt<'a>>> = stored.iter().copied().collect();
    let Some(all) = all else {
        return Err(duplicate(
            *first_stored.0,
            DuplicateReason::PartOfBatchStored,
        ));
    };
    let (Some(&first), Some(&last)) = (all.first(), all.last()) else {
        return Ok(None);
    };
    for (offset, (&event_id, at)) in ids.iter().zip(&all).enumerate() {
        if at.stream != stream.as_str() {
            let other = StreamId::new(at.stream).unwrap_or_else(|_| stream.clone());
            return Err(duplicate(
                event_id,
                DuplicateReason::StoredInOtherStream(other),
            ));
        }
        if at.version.get() != first.version.get() + offset as u64 {
            return Err(duplicate(
                event_id,
                DuplicateReason::StoredAtOtherVersion(at.version),
            ));
        }
    }
    if !expected.fits_first_version(first.version) {
        return Err(duplicate(
            ids[0],
            DuplicateReason::StoredAtOtherVersion(first.version),
        ));
    }
    Ok(Some((first, last)))
}
