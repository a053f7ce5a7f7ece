//! A tally whose every event says which version its decision was taken on: a stored event at version `v` that
//! does not say `v - 1` was decided on stale state.

use es_core::{Aggregate, DomainEvent};

/// How many times the tally was counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events applied: the stream version.
    pub count: u64,
}

/// The tally's one event.
#[derive(Clone, Debug, PartialEq, Eq, DomainEvent)]
#[event(aggregate = Tally)]
pub enum TallyEvent {
    /// Counted once more, decided on the state at version `seen`.
    Counted {
        /// The version the decision saw.
        seen: u64,
    },
}

impl Aggregate for Tally {
    const CATEGORY: &'static str = "tally";
    type Event = TallyEvent;
    type Command = ();
    type Error = std::convert::Infallible;

    fn handle(&self, _: &()) -> Result<Vec<TallyEvent>, Self::Error> {
        Ok(vec![TallyEvent::Counted { seen: self.count }])
    }

    fn apply(mut self, _: &TallyEvent) -> Self {
        self.count += 1;
        self
    }
}
