//! Given/when/then for aggregates: given past events, when a command, then these events or this error.

use std::fmt::Debug;
use std::marker::PhantomData;

use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

/// Starts a scenario from the events that already happened.
///
/// ```
/// use es_core::{Aggregate, DomainEvent};
/// use es_core::testing::given;
///
/// #[derive(Default, Clone)]
/// struct Door { open: bool }
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// #[event(aggregate = Door)]
/// enum DoorEvent { Opened, Closed }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("already open")]
/// struct AlreadyOpen;
///
/// impl Aggregate for Door {
///     const CATEGORY: &'static str = "door";
///     type Event = DoorEvent;
///     type Command = ();
///     type Error = AlreadyOpen;
///     fn handle(&self, _: &()) -> Result<Vec<DoorEvent>, AlreadyOpen> {
///         if self.open { Err(AlreadyOpen) } else { Ok(vec![DoorEvent::Opened]) }
///     }
///     fn apply(mut self, event: &DoorEvent) -> Self {
///         self.open = matches!(event, DoorEvent::Opened);
///         self
///     }
/// }
///
/// given::<Door>([]).when(()).then([DoorEvent::Opened]);
/// given::<Door>([DoorEvent::Opened]).when(()).then_error(AlreadyOpen);
/// given::<Door>([DoorEvent::Opened, DoorEvent::Closed]).when(()).then([DoorEvent::Opened]);
/// ```
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    Scenario::given(events)
}

/// Entry point of the given/when/then kit; [`given`] is the short form.
#[derive(Debug)]
pub struct Scenario<A>(PhantomData<fn() -> A>);

impl<A: Aggregate> Scenario<A> {
    /// The aggregate after `events`.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
        let state = events
            .into_iter()
            .fold(A::default(), |state, event| state.apply(&event));
        Given { state }
    }

    /// A new aggregate: no events yet.
    pub fn given_no_events() -> Given<A> {
        Given {
            state: A::default(),
        }
    }
}

/// A scenario's state, waiting for its command.
#[derive(Debug)]
pub struct Given<A> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// Decides `command`.
    pub fn when(self, command: A::Command) -> When<A> {
        let outcome = self.state.handle(&command);
        When {
            state: self.state,
            outcome,
        }
    }
}

/// A scenario's outcome, waiting for its expectation.
#[derive(Debug)]
pub struct When<A: Aggregate> {
    state: A,
    outcome: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> When<A>
where
    A::Event: Debug + PartialEq,
{
    /// Asserts that the command produced exactly `expected`, and that each event survives a round trip through
    /// its stored form (encode, then decode). Returns the state after the events, for further checks.
    ///
    /// # Panics
    /// When the command was rejected, produced other events, or an event does not round-trip.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<_> = expected.into_iter().collect();
        let events = match self.outcome {
            Ok(events) => events,
            Err(error) => {
                panic!("expected events {expected:?}, but the command was rejected: {error}")
            }
        };
        assert_eq!(
            events, expected,
            "the command produced other events than expected"
        );
        for event in &events {
            let payload = event
                .encode()
                .unwrap_or_else(|error| panic!("{event:?} does not encode: {error}"));
            let decoded = A::Event::decode(event.event_type(), event.schema_version(), &payload)
                .unwrap_or_else(|error| {
                    panic!("{event:?} does not decode from {payload}: {error}")
                });
            assert_eq!(
                &decoded, event,
                "event changed in a round trip through {payload}"
            );
        }
        events.iter().fold(self.state, A::apply)
    }

    /// Asserts that the command was rejected with `expected`.
    ///
    /// # Panics
    /// When the command produced events or another error.
    #[track_caller]
    pub fn then_error(self, expected: A::Error)
    where
        A::Error: PartialEq + Debug,
    {
        match self.outcome {
            Ok(events) => {
                panic!("expected error {expected:?}, but the command produced {events:?}")
            }
            Err(error) => assert_eq!(error, expected, "the command failed with another error"),
        }
    }

    /// Asserts that the command was rejected with an error for which `check` holds.
    ///
    /// # Panics
    /// When the command produced events or `check` returns false.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&A::Error) -> bool)
    where
        A::Error: Debug,
    {
        match self.outcome {
            Ok(events) => panic!("expected an error, but the command produced {events:?}"),
            Err(error) => assert!(check(&error), "unexpected error: {error:?}"),
        }
    }
}
