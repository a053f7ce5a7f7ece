//! Aggregates: the decider that turns commands into events and folds events into state.

use crate::event::DomainEvent;

/// A consistency boundary modelled as a decider: state folded from its own events, and a pure decision that turns a
/// command into new events.
///
/// Both functions are pure, synchronous and do no I/O: anything from the outside world (the time, a price, an id)
/// arrives inside the command. State starts from [`Default`]. Each aggregate lives in one stream named
/// `{CATEGORY}-{id}`.
///
/// ```
/// use es_core::{Aggregate, DomainEvent};
///
/// #[derive(Default, Clone)]
/// struct Counter { value: u64 }
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// #[event(aggregate = Counter)]
/// enum CounterEvent { Incremented { by: u64 } }
///
/// #[derive(Debug, thiserror::Error, PartialEq)]
/// #[error("increment must be positive")]
/// struct ZeroIncrement;
///
/// impl Aggregate for Counter {
///     const CATEGORY: &'static str = "counter";
///     type Event = CounterEvent;
///     type Command = u64;
///     type Error = ZeroIncrement;
///
///     fn handle(&self, by: &u64) -> Result<Vec<CounterEvent>, ZeroIncrement> {
///         if *by == 0 { return Err(ZeroIncrement); }
///         Ok(vec![CounterEvent::Incremented { by: *by }])
///     }
///
///     fn apply(mut self, event: &CounterEvent) -> Self {
///         match event { CounterEvent::Incremented { by } => self.value += by }
///         self
///     }
/// }
///
/// let counter = Counter::default();
/// let events = counter.handle(&2).unwrap();
/// let counter = events.iter().fold(counter, Counter::apply);
/// assert_eq!(counter.value, 2);
/// ```
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    /// The stream category: the aggregate with id `42` lives in stream `{CATEGORY}-42`.
    const CATEGORY: &'static str;
    /// The events this aggregate records.
    type Event: DomainEvent;
    /// The commands it decides on.
    type Command: Send + Sync;
    /// Why it rejects a command (a domain error: insufficient funds, account closed, ...).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides which events a command produces in the current state, or rejects it. Pure: called again on fresh
    /// state when an append loses a race, so it must not have side effects.
    ///
    /// # Errors
    /// The aggregate's domain error when the command is not allowed in this state.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolves the state by one event. Pure and infallible: events are facts that already happened.
    fn apply(self, event: &Self::Event) -> Self;
}

/// Whether `category` can name a stream category: not empty, no `-` (ids split at the first one), no control
/// characters.
pub(crate) const fn valid_category(category: &str) -> bool {
    let bytes = category.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'-' || bytes[i] < 0x20 || bytes[i] == 0x7f {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `categories` include `category`. An aggregate's event type must say so: one that declares no category
/// is read by projections from every category, where a same-named event of another aggregate would not decode.
pub(crate) const fn lists_category(categories: &[&str], category: &str) -> bool {
    let mut i = 0;
    while i < categories.len() {
        if categories[i].len() == category.len() {
            let (a, b) = (categories[i].as_bytes(), category.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_checked_for_what_stream_ids_can_hold() {
        assert!(valid_category("order"));
        for bad in ["", "sales-order", "tab\tbed", "del\u{7f}"] {
            assert!(!valid_category(bad), "{bad:?}");
        }
        assert!(!lists_category(&[], "order"));
        assert!(lists_category(&["parcel", "order"], "order"));
        assert!(!lists_category(&["orders"], "order"));
    }
}
