//! [`Query`]: which events a decision reads across streams (by type and tag), and the [`AppendCondition`] that
//! keeps its append from racing the events it read (a dynamic consistency boundary).

use crate::store::{Position, RecordedEvent};

/// One item of a [`Query`]: an event matches when its type is one of `types` (any type when empty) and it carries
/// every one of `tags`.
///
/// ```
/// use es_core::store::QueryItem;
///
/// let enrolments = QueryItem::types(["StudentEnrolled"]).and_tags(["course:3"]);
/// assert!(enrolments.matches("StudentEnrolled", &["student:7".into(), "course:3".into()]));
/// assert!(!enrolments.matches("StudentEnrolled", &["course:4".into()]));
/// assert!(!enrolments.matches("CourseCreated", &["course:3".into()]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryItem {
    types: Vec<String>,
    tags: Vec<String>,
}

impl QueryItem {
    /// Events of any of `types`.
    pub fn types<T: Into<String>>(types: impl IntoIterator<Item = T>) -> Self {
        Self::default().and_types(types)
    }

    /// Events carrying every one of `tags`.
    pub fn tags<T: Into<String>>(tags: impl IntoIterator<Item = T>) -> Self {
        Self::default().and_tags(tags)
    }

    /// Also one of `types`.
    pub fn and_types<T: Into<String>>(mut self, types: impl IntoIterator<Item = T>) -> Self {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Also every one of `tags`.
    pub fn and_tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Its event types (empty: any).
    pub fn event_types(&self) -> &[String] {
        &self.types
    }

    /// Its tags (all required).
    pub fn required_tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether an event of `event_type` carrying `tags` matches.
    pub fn matches(&self, event_type: &str, tags: &[String]) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && self.tags.iter().all(|tag| tags.contains(tag))
    }
}

/// The events a decision depends on, across streams: any of its items (OR). See
/// [`EventStore::read_query`](crate::EventStore::read_query) and [`AppendCondition`].
///
/// ```
/// use es_core::store::{Query, QueryItem};
///
/// // The course's capacity and enrolments, and the student's enrolments: two invariants, one boundary.
/// let boundary = Query::new()
///     .item(QueryItem::types(["CourseCreated", "StudentEnrolled"]).and_tags(["course:3"]))
///     .item(QueryItem::types(["StudentEnrolled"]).and_tags(["student:7"]));
/// assert!(boundary.matches("StudentEnrolled", &["student:7".into(), "course:9".into()]));
/// assert!(!boundary.matches("CourseCreated", &["course:9".into()]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    items: Vec<QueryItem>,
}

impl Query {
    /// A query without items: it matches no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `item`.
    pub fn item(mut self, item: QueryItem) -> Self {
        self.items.push(item);
        self
    }

    /// Its items.
    pub fn items(&self) -> &[QueryItem] {
        &self.items
    }

    /// Whether an event of `event_type` carrying `tags` matches any item.
    pub fn matches(&self, event_type: &str, tags: &[String]) -> bool {
        self.items.iter().any(|item| item.matches(event_type, tags))
    }

    /// Whether `event` matches.
    pub fn matches_event(&self, event: &RecordedEvent) -> bool {
        self.matches(&event.event_type, &event.tags)
    }
}

/// What a query read returned: the matching events in global order, and the position to make a decision's append
/// conditional on ([`AppendCondition::after`]): every matching event at or before it was returned.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryRead {
    /// The matching events, in global order.
    pub events: Vec<RecordedEvent>,
    /// Where the read stood: `None` when the store was empty.
    pub after: Option<Position>,
}

/// Makes an append fail ([`StoreError::ConditionFailed`](crate::StoreError::ConditionFailed)) when the store holds
/// an event matching `query` after `after` — one the decision did not see. Events at or before `after` are ignored.
/// Use the `after` of the [`QueryRead`] the decision was made on.
///
/// ```
/// use es_core::store::{AppendCondition, MultiAppend, Query, QueryItem};
/// use es_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = es_memory::InMemoryEventStore::new();
/// let ada = Query::new().item(QueryItem::types(["Registered"]).and_tags(["username:ada"]));
/// let read = store.read_query(&ada, None).await?; // nobody has the name: decide to register it
/// let register = |user: &str| {
///     MultiAppend::new()
///         .append(
///             StreamId::new(format!("user-{user}")).expect("stream id"),
///             ExpectedVersion::Any,
///             vec![NewEvent::new("Registered", 1, serde_json::json!({})).with_tags(["username:ada"])],
///         )
///         .condition(AppendCondition::new(ada.clone(), read.after))
/// };
/// store.append_multi(register("1")).await?;
/// // A second decision made on the same read: the first one's event matches, so nothing is written.
/// assert!(matches!(store.append_multi(register("2")).await, Err(StoreError::ConditionFailed { .. })));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AppendCondition {
    /// The events the decision depends on.
    pub query: Query,
    /// Where the decision's read stood (`None`: any matching event fails the append).
    pub after: Option<Position>,
}

impl AppendCondition {
    /// Fails the append if an event matching `query` is stored after `after`.
    pub fn new(query: Query, after: Option<Position>) -> Self {
        Self { query, after }
    }
}
