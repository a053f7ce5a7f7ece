//! [`MultiAppend`]: one atomic append to several streams, each with its own expected version, that may also assert
//! the version of streams it does not write.

use std::collections::HashSet;

use crate::store::append::validate_append;
use crate::store::{AppendCondition, ExpectedVersion, NewEvent, StoreError, StreamId, Version};

/// One stream's part of a [`MultiAppend`].
#[derive(Clone, Debug)]
pub struct StreamAppend {
    /// The stream.
    pub stream: StreamId,
    /// What its version must be.
    pub expected: ExpectedVersion,
    /// Its events, in order.
    pub events: Vec<NewEvent>,
}

/// Appends to several streams in one transaction, all or nothing, with [`EventStore::append_multi`]: each stream
/// with its own [`ExpectedVersion`], and streams it only reads asserted with [`check`](Self::check). When any
/// expectation fails nothing is written and the error ([`StoreError::Conflicts`]) names every stream whose
/// expectation failed, with its actual version. A retry with the same event ids returns the first append's
/// results (`replayed`), as a single append does.
///
/// ```
/// use es_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
/// use es_core::store::MultiAppend;
/// use es_memory::InMemoryEventStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let (from, to) = (StreamId::new("account-1")?, StreamId::new("account-2")?);
/// let transfer = MultiAppend::new()
///     .append(from.clone(), ExpectedVersion::NoStream, vec![NewEvent::new("Debited", 1, serde_json::json!({ "amount": 5 }))])
///     .append(to.clone(), ExpectedVersion::NoStream, vec![NewEvent::new("Credited", 1, serde_json::json!({ "amount": 5 }))]);
/// let written = store.append_multi(transfer.clone()).await?;
/// assert_eq!(written.len(), 2);
///
/// // The same expectations again: both streams moved on, so both are named and nothing is written.
/// let again = MultiAppend::new()
///     .append(from.clone(), ExpectedVersion::NoStream, vec![NewEvent::new("Debited", 1, serde_json::json!({ "amount": 5 }))])
///     .check(to.clone(), ExpectedVersion::NoStream);
/// match store.append_multi(again).await {
///     Err(StoreError::Conflicts { conflicts }) => assert_eq!(conflicts.len(), 2),
///     other => panic!("{other:?}"),
/// }
/// // The first transfer again, same ids: a retry, nothing written twice.
/// assert!(store.append_multi(transfer).await?.iter().all(|r| r.replayed));
/// # Ok(()) }
/// ```
///
/// [`EventStore::append_multi`]: crate::EventStore::append_multi
#[derive(Clone, Debug, Default)]
pub struct MultiAppend {
    appends: Vec<StreamAppend>,
    checks: Vec<(StreamId, ExpectedVersion)>,
    condition: Option<AppendCondition>,
}

impl MultiAppend {
    /// Nothing to append yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `events` to `stream`, which must be at `expected`.
    pub fn append(
        mut self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        self.appends.push(StreamAppend {
            stream,
            expected,
            events,
        });
        self
    }

    /// Asserts that `stream`, which this append does not write, is at `expected` until it commits.
    pub fn check(mut self, stream: StreamId, expected: ExpectedVersion) -> Self {
        self.checks.push((stream, expected));
        self
    }

    /// Fails the whole append when an event matching the condition's query is stored after its position (see
    /// [`AppendCondition`]): alongside the streams' expected versions, or instead of them (with
    /// [`ExpectedVersion::Any`]).
    pub fn condition(mut self, condition: AppendCondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Its condition, if any.
    pub fn append_condition(&self) -> Option<&AppendCondition> {
        self.condition.as_ref()
    }

    /// The streams written, in order.
    pub fn appends(&self) -> &[StreamAppend] {
        &self.appends
    }

    /// The streams asserted only.
    pub fn checks(&self) -> &[(StreamId, ExpectedVersion)] {
        &self.checks
    }

    /// Its parts, to take apart in a backend.
    pub fn into_parts(self) -> MultiParts {
        MultiParts {
            appends: self.appends,
            checks: self.checks,
            condition: self.condition,
        }
    }

    /// Every stream it names: written, then checked ([`validate_multi`] refuses a stream named twice).
    pub fn streams(&self) -> impl Iterator<Item = (&StreamId, ExpectedVersion)> {
        self.appends
            .iter()
            .map(|a| (&a.stream, a.expected))
            .chain(self.checks.iter().map(|(s, e)| (s, *e)))
    }
}

/// A [`MultiAppend`] taken apart, for a backend.
#[derive(Debug)]
pub struct MultiParts {
    /// The streams written, in order.
    pub appends: Vec<StreamAppend>,
    /// The streams asserted only.
    pub checks: Vec<(StreamId, ExpectedVersion)>,
    /// The condition, if any.
    pub condition: Option<AppendCondition>,
}

/// A stream whose expectation failed in a [`MultiAppend`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConflict {
    /// The stream.
    pub stream: StreamId,
    /// What the append expected.
    pub expected: ExpectedVersion,
    /// Its actual version; `None` when it does not exist.
    pub actual: Option<Version>,
}

impl std::fmt::Display for StreamConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.actual {
            Some(actual) => write!(
                f,
                "`{}` expected {}, at version {actual}",
                self.stream, self.expected
            ),
            None => write!(f, "`{}` expected {}, missing", self.stream, self.expected),
        }
    }
}

/// Checks what every backend refuses in a [`MultiAppend`] before touching storage: no stream to append to, a
/// stream named twice (written or checked), and each append's batch as [`validate_append`] does. For backend
/// implementors.
///
/// # Errors
/// [`StoreError::NothingToAppend`], [`StoreError::StreamRepeated`], or the batch's error.
///
/// ```
/// use es_core::backend::validate_multi;
/// use es_core::store::MultiAppend;
/// use es_core::{ExpectedVersion, NewEvent, StoreError, StreamId};
///
/// let a = StreamId::new("a-1")?;
/// let twice = MultiAppend::new()
///     .append(a.clone(), ExpectedVersion::Any, vec![NewEvent::new("E", 1, serde_json::json!({}))])
///     .check(a, ExpectedVersion::Any);
/// assert!(matches!(validate_multi(&twice), Err(StoreError::StreamRepeated { .. })));
/// # Ok::<(), es_core::store::StreamIdError>(())
/// ```
pub fn validate_multi(append: &MultiAppend) -> Result<(), StoreError> {
    if append.appends.is_empty() {
        return Err(StoreError::NothingToAppend);
    }
    let mut seen = HashSet::new();
    for (stream, _) in append.streams() {
        if !seen.insert(stream) {
            return Err(StoreError::StreamRepeated {
                stream: stream.clone(),
            });
        }
    }
    let mut ids = HashSet::new();
    for part in &append.appends {
        validate_append(&part.stream, &part.events)?;
        if let Some(event) = part.events.iter().find(|e| !ids.insert(e.event_id)) {
            return Err(StoreError::DuplicateEventId {
                stream: part.stream.clone(),
                event_id: event.event_id,
                reason: crate::store::DuplicateReason::RepeatedInBatch,
            });
        }
    }
    Ok(())
}
