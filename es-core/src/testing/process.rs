//! Given/when/then for process managers: given past inputs, when an input, then these commands and timers.

use std::fmt::Debug;

use crate::process::{Input, ProcessManager, Reaction};

/// Starts a process scenario from the inputs an instance already handled.
///
/// ```
/// use chrono::Utc;
/// use es_core::{DomainEvent, Position, RecordedEvent, StreamId, Version};
/// use es_core::process::{Input, Origin, ProcessManager, Reaction};
/// use es_core::testing::process_given;
///
/// #[derive(DomainEvent)]
/// enum Ev { Placed { id: String } }
///
/// struct Greeter;
///
/// impl ProcessManager for Greeter {
///     type Event = Ev;
///     type State = u32;
///     type Command = String;
///     fn name(&self) -> &str { "greeter" }
///     fn correlate(&self, Ev::Placed { id }: &Ev, _: &RecordedEvent) -> Option<String> { Some(id.clone()) }
///     fn apply(&self, seen: u32, _: &Input<Ev>) -> u32 { seen + 1 }
///     fn react(&self, seen: &u32, _: &Input<Ev>) -> Reaction<String> {
///         if *seen == 1 { Reaction::none().send("welcome".into()) } else { Reaction::none() }
///     }
/// }
///
/// let origin = Origin::new(StreamId::new("order-1")?, Version::new(1), Position::new(1, 1));
/// let placed = || Input::Event { event: Ev::Placed { id: "1".into() }, at: Utc::now(), origin: origin.clone() };
/// process_given(&Greeter, []).when(placed()).then(Reaction::none().send("welcome".to_owned()));
/// process_given(&Greeter, [placed()]).when(placed()).then(Reaction::none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn process_given<P: ProcessManager>(
    process: &P,
    inputs: impl IntoIterator<Item = Input<P::Event>>,
) -> ProcessGiven<'_, P> {
    let state = inputs
        .into_iter()
        .fold(P::State::default(), |state, input| {
            process.apply(state, &input)
        });
    ProcessGiven { process, state }
}

/// A process scenario's state, waiting for its input.
#[derive(Debug)]
pub struct ProcessGiven<'a, P: ProcessManager> {
    process: &'a P,
    state: P::State,
}

impl<'a, P: ProcessManager> ProcessGiven<'a, P> {
    /// Applies `input` and takes the reaction.
    pub fn when(self, input: Input<P::Event>) -> ProcessWhen<P> {
        let state = self.process.apply(self.state, &input);
        let reaction = self.process.react(&state, &input);
        ProcessWhen { state, reaction }
    }
}

/// A process scenario's outcome.
#[derive(Debug)]
pub struct ProcessWhen<P: ProcessManager> {
    state: P::State,
    reaction: Reaction<P::Command>,
}

impl<P: ProcessManager> ProcessWhen<P>
where
    P::Command: PartialEq + Debug,
{
    /// Asserts the reaction (commands in order, timers set and cancelled); returns the state.
    ///
    /// # Panics
    /// When the reaction differs.
    #[track_caller]
    pub fn then(self, expected: Reaction<P::Command>) -> P::State {
        assert_eq!(self.reaction, expected, "the process reacted otherwise");
        self.state
    }
}
