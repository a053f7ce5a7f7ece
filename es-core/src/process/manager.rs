//! The process manager a user writes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::DomainEvent;
use crate::store::{Position, RecordedEvent, StreamId, Version};

/// What a process instance reacts to.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<E> {
    /// An event it subscribed to, with when it was recorded and where it is stored.
    Event {
        /// The event.
        event: E,
        /// When the store recorded it (a pure `react` takes "now" from here).
        at: DateTime<Utc>,
        /// Its stream, version and position: the aggregate it came from, without the event repeating its id.
        origin: Origin,
    },
    /// A command it sent was rejected by the aggregate (a domain error): compensate.
    Rejected {
        /// The step of the reaction that sent it.
        step: u32,
        /// The aggregate's error, as text.
        error: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// One of its timers reached its deadline.
    TimerFired {
        /// The timer's name.
        name: String,
        /// Its deadline.
        at: DateTime<Utc>,
    },
}

/// Where an input event is stored: its stream (so the aggregate it came from), its version there and its position
/// in the global order.
///
/// ```
/// use es_core::process::Origin;
/// use es_core::{Position, StreamId, Version};
///
/// let origin = Origin::new(StreamId::new("order-7")?, Version::new(3), Position::new(12, 12));
/// assert_eq!(origin.stream.category(), "order");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub version: Version,
    /// Its position in the global order.
    pub position: Position,
}

impl Origin {
    /// An origin at `stream`, `version`, `position`.
    pub fn new(stream: StreamId, version: Version, position: Position) -> Self {
        Self {
            stream,
            version,
            position,
        }
    }

    /// Where `record` is stored.
    pub fn of(record: &RecordedEvent) -> Self {
        Self::new(record.stream_id.clone(), record.version, record.position)
    }
}

/// A timer a process sets: fires once, at or after `at`, unless cancelled (setting one of the same name replaces it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Timer {
    /// Its name, unique within the instance.
    pub name: String,
    /// Its deadline.
    pub at: DateTime<Utc>,
}

/// What a process does in reaction to an input.
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction<C> {
    /// Commands to send, in order (their index is the step).
    pub commands: Vec<C>,
    /// Timers to set.
    pub set_timers: Vec<Timer>,
    /// Names of timers to cancel.
    pub cancel_timers: Vec<String>,
}

impl<C> Default for Reaction<C> {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            set_timers: Vec::new(),
            cancel_timers: Vec::new(),
        }
    }
}

impl<C> Reaction<C> {
    /// No commands, no timers.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sends `command`.
    pub fn send(mut self, command: C) -> Self {
        self.commands.push(command);
        self
    }

    /// Sets timer `name` to fire at `at`.
    pub fn set_timer(mut self, name: impl Into<String>, at: DateTime<Utc>) -> Self {
        self.set_timers.push(Timer {
            name: name.into(),
            at,
        });
        self
    }

    /// Cancels timer `name`.
    pub fn cancel_timer(mut self, name: impl Into<String>) -> Self {
        self.cancel_timers.push(name.into());
        self
    }
}

/// A long-running workflow across aggregates: per-instance state folded from its inputs, and pure reactions.
///
/// `apply` and `react` are pure and synchronous, like an aggregate's: the runner may call them again for a
/// redelivered input and relies on getting the same commands. [`ProcessRunner`](crate::process::ProcessRunner) shows a
/// runnable one; `examples/src/shop.rs` has an order process manager with compensation and a deadline.
pub trait ProcessManager: Send + Sync + 'static {
    /// The events it reads, through their [upcasters](crate::evolution) (others are skipped before decoding).
    type Event: DomainEvent;
    /// Its per-instance state, stored as JSON.
    type State: Default + Serialize + DeserializeOwned + Send + Sync;
    /// The commands it sends; a [`CommandRouter`](crate::process::CommandRouter) delivers them.
    type Command: Send + Sync;

    /// Its unique name (also its projection's).
    fn name(&self) -> &str;

    /// The instance an event belongs to (its correlation key, e.g. the order id); `None` to ignore the event.
    fn correlate(&self, event: &Self::Event, record: &RecordedEvent) -> Option<String>;

    /// Folds an input into the state.
    fn apply(&self, state: Self::State, input: &Input<Self::Event>) -> Self::State;

    /// Decides what to do after an input, given the state with the input applied.
    fn react(&self, state: &Self::State, input: &Input<Self::Event>) -> Reaction<Self::Command>;
}
