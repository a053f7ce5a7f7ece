//! What a load or a command through the repository returns.

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::store::{AppendResult, Position, Version};

/// An aggregate's state as loaded, with the stream version it reflects.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The version of the last event folded into it; [`Version::INITIAL`] for a new aggregate.
    pub version: Version,
    /// The version of the snapshot the load started from; `None` when it folded every event.
    pub snapshot: Option<Version>,
}

/// Which past state [`Repository::load_as_of`](crate::Repository::load_as_of) loads.
///
/// ```
/// use es_core::Version;
/// use es_core::aggregate::AsOf;
///
/// let after_ten_events = AsOf::Version(Version::new(10));
/// let new_years_eve = AsOf::Time("2025-12-31T23:59:59Z".parse()?);
/// # let _ = (after_ten_events, new_years_eve);
/// # Ok::<(), chrono::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// The state after the event at this version (the whole stream when it is shorter).
    Version(Version),
    /// The state after every event recorded at or before this time (the store's `recorded_at`).
    Time(DateTime<Utc>),
}

/// What [`Repository::execute`](crate::Repository::execute) did.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed<A: Aggregate> {
    /// The state after the new events.
    pub state: A,
    /// The stream version after the new events.
    pub version: Version,
    /// The events the command produced (empty when it decided that nothing changes).
    pub events: Vec<A::Event>,
    /// Where they were stored; `None` when there were none.
    pub append: Option<AppendResult>,
    /// How many times the command was decided: 1, plus one per lost race.
    pub attempts: u32,
    /// `true` when the command (by id, see [`Repository::execute_as`](crate::Repository::execute_as)) had been executed before: nothing was done.
    pub replayed: bool,
}

impl<A: Aggregate> Executed<A> {
    /// The global position of the last event the command stored: wait for a projection to pass it to read your own
    /// write (`running.wait_for(name, position, timeout)`). `None` when it stored nothing.
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone)] struct Counter;
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter";
    /// #     type Event = CounterEvent; type Command = bool; type Error = std::convert::Infallible;
    /// #     fn handle(&self, up: &bool) -> Result<Vec<CounterEvent>, Self::Error> {
    /// #         Ok(if *up { vec![CounterEvent::Incremented] } else { vec![] })
    /// #     }
    /// #     fn apply(self, _: &CounterEvent) -> Self { self }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let counters = Repository::<Counter, _>::new(InMemoryEventStore::new());
    /// let done = counters.execute("a", &true, Metadata::new()).await?;
    /// assert!(done.position().is_some());
    /// let nothing = counters.execute("a", &false, Metadata::new()).await?;
    /// assert_eq!(nothing.position(), None);
    /// # Ok(()) }
    /// ```
    pub fn position(&self) -> Option<Position> {
        self.append.map(|append| append.last_position)
    }
}
