//! The filtered feed: the global stream read in pages of the events a consumer selects (by category and event
//! type), each page saying how far it read, so a consumer's checkpoint moves past events it does not want.

use std::pin::Pin;

use futures::{FutureExt, Stream, StreamExt};
use md5::{Digest, Md5};

use crate::event::DomainEvent;
use crate::store::category_of;
use crate::store::error::StoreError;
use crate::store::{Position, RecordedEvent};

/// The partition of `stream` among `partitions`: the first four bytes of the MD5 digest of its id, big-endian,
/// modulo `partitions`. A backend with a query language computes the same on the server (PostgreSQL's
/// `md5()`), to filter a partition's feed and count its lag there. A stream's events all go to one partition, so each stream is handled in order by one worker at a time.
///
/// ```
/// use es_core::store::partition_of;
///
/// let p = partition_of("account-42", 8);
/// assert!(p < 8);
/// assert_eq!(partition_of("account-42", 8), p);
/// assert_eq!(partition_of("account-42", 1), 0);
/// ```
pub fn partition_of(stream: &str, partitions: u32) -> u32 {
    let digest = Md5::digest(stream.as_bytes());
    let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    head % partitions.max(1)
}

/// Which events a consumer of the feed selects: stream categories and stored event types (empty: every one).
///
/// ```
/// use es_core::DomainEvent;
/// use es_core::store::FeedFilter;
///
/// #[derive(DomainEvent)]
/// enum AccountEvent { Opened, Closed }
///
/// let accounts = FeedFilter::of::<AccountEvent>(&["account"]);
/// assert!(accounts.matches("account-1", "Opened"));
/// assert!(!accounts.matches("order-1", "Opened"));
/// assert!(!accounts.matches("account-1", "Renamed"));
/// assert!(FeedFilter::all().matches("order-1", "Shipped"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedFilter {
    categories: Vec<String>,
    event_types: Vec<String>,
    /// Only the streams of this partition (partition, of how many), by [`partition_of`].
    partition: Option<(u32, u32)>,
}

impl FeedFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// The events `E` reads (its types, and the older types its upcasters rename) in streams of `categories`
    /// (empty: every category).
    pub fn of<E: DomainEvent>(categories: &[&str]) -> Self {
        let mut event_types: Vec<String> = E::EVENT_TYPES
            .iter()
            .chain(E::UPCASTERS.iter().map(|step| &step.event_type))
            .map(|t| (*t).to_owned())
            .collect();
        event_types.sort();
        event_types.dedup();
        Self {
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            event_types,
            partition: None,
        }
    }

    /// Only streams of `categories` (empty: every category).
    pub fn with_categories(mut self, categories: &[&str]) -> Self {
        self.categories = categories.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Only events stored as `event_types` (empty: every type).
    pub fn only_types(mut self, event_types: &[&str]) -> Self {
        self.event_types = event_types.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Only streams of partition `partition` of `partitions` ([`partition_of`]).
    pub fn partition(mut self, partition: u32, partitions: u32) -> Self {
        self.partition = Some((partition, partitions.max(1)));
        self
    }

    /// Whether it selects every event.
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.event_types.is_empty() && self.partition.is_none()
    }

    /// The partition it selects (partition, of how many), if any.
    pub fn partition_of(&self) -> Option<(u32, u32)> {
        self.partition
    }

    /// The categories it selects (empty: every one).
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The stored event types it selects (empty: every one).
    pub fn event_types(&self) -> &[String] {
        &self.event_types
    }

    /// Whether it selects the event stored as `event_type` in `stream`.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        (self.categories.is_empty() || self.categories.iter().any(|c| c == category_of(stream)))
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && self
                .partition
                .is_none_or(|(p, of)| partition_of(stream, of) == p)
    }

    /// What any of `filters` selects.
    pub fn union<'a>(filters: impl IntoIterator<Item = &'a FeedFilter>) -> Self {
        let mut union = Self::default();
        let (mut any_category, mut any_type) = (false, false);
        let mut partitions = Vec::new();
        for filter in filters {
            partitions.push(filter.partition);
            any_category |= filter.categories.is_empty();
            any_type |= filter.event_types.is_empty();
            union.categories.extend(filter.categories.iter().cloned());
            union.event_types.extend(filter.event_types.iter().cloned());
        }
        for (any, list) in [
            (any_category, &mut union.categories),
            (any_type, &mut union.event_types),
        ] {
            if any {
                list.clear();
            }
            list.sort();
            list.dedup();
        }
        partitions.dedup();
        if let [one] = partitions[..] {
            union.partition = one;
        }
        union
    }
}

/// One page of the filtered feed: the selected events, and the position it read through (at or after the last of
/// them). A consumer that has handled the events can move its checkpoint to `through`.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedBatch {
    /// The selected events, in global order.
    pub events: Vec<RecordedEvent>,
    /// How far the read went.
    pub through: Position,
}

/// A live filtered feed, as returned by [`EventStore::subscribe_filtered`](crate::EventStore::subscribe_filtered).
/// A stored event that does not read back is a [`StoreError::Corrupt`] item in its place (the feed goes on after
/// it); any other error ends it.
pub type FeedStream = Pin<Box<dyn Stream<Item = Result<FeedBatch, StoreError>> + Send>>;

/// The most events the default feed gathers into one batch.
const DEFAULT_BATCH: usize = 1_000;

/// A filtered feed over any [`EventStream`](crate::store::EventStream): the events ready at once gathered into a
/// batch, filtered in the process. Backends with a query language filter on the server instead.
pub fn filtered(events: crate::store::EventStream, filter: FeedFilter) -> FeedStream {
    let state = (events, filter, None::<StoreError>);
    Box::pin(futures::stream::unfold(
        state,
        |(mut events, filter, held)| async move {
            if let Some(error) = held {
                return Some((Err(error), (events, filter, None)));
            }
            let first = match events.next().await? {
                Ok(event) => event,
                Err(error) => return Some((Err(error), (events, filter, None))),
            };
            let mut through = first.position;
            let mut batch = Vec::new();
            let mut keep = |event: RecordedEvent, batch: &mut Vec<RecordedEvent>| {
                through = event.position;
                if filter.matches(event.stream_id.as_str(), &event.event_type) {
                    batch.push(event);
                }
            };
            keep(first, &mut batch);
            let mut held = None;
            for _ in 1..DEFAULT_BATCH {
                match events.next().now_or_never() {
                    Some(Some(Ok(event))) => keep(event, &mut batch),
                    Some(Some(Err(error))) => {
                        held = Some(error);
                        break;
                    }
                    _ => break,
                }
            }
            let batch = FeedBatch {
                events: batch,
                through,
            };
            Some((Ok(batch), (events, filter, held)))
        },
    ))
}
