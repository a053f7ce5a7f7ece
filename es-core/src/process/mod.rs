//! Process managers (also called sagas): long-running workflows across aggregates.
//!
//! A [`ProcessManager`] folds the events it cares about into per-instance state (pure, like an aggregate) and
//! reacts with commands and timers (pure too). The [`ProcessRunner`] feeds it from the global stream through the
//! projection runner, sends its commands through a [`CommandRouter`], delivers rejections back to it as
//! [`Input::Rejected`] so it can compensate, fires its timers once at or after their deadlines, and keeps state
//! and timers in a [`ProcessStore`].
//!
//! Exactly-once effect under redelivery: every command gets an id derived from (process, instance, causing input,
//! step), and the events it produces get ids derived from that; a redelivered input re-sends the same command ids,
//! and [`Repository::execute_as`](crate::Repository::execute_as) recognises them as already executed.
//!
//! A process's decisions are pure, so they are tested without a store:
//!
//! ```
//! use chrono::{Duration, Utc};
//! use es_core::process::{Input, Origin, ProcessManager, Reaction};
//! use es_core::{DomainEvent, Position, RecordedEvent, StreamId, Version};
//!
//! #[derive(DomainEvent)]
//! enum OrderEvent { Placed { order: String }, Paid { order: String } }
//!
//! enum PaymentCommand { Remind { order: String } }
//!
//! struct Payments;
//!
//! impl ProcessManager for Payments {
//!     type Event = OrderEvent;
//!     type State = bool; // paid?
//!     type Command = PaymentCommand;
//!     fn name(&self) -> &str { "payments" }
//!     fn correlate(&self, event: &OrderEvent, _: &RecordedEvent) -> Option<String> {
//!         match event { OrderEvent::Placed { order } | OrderEvent::Paid { order } => Some(order.clone()) }
//!     }
//!     fn apply(&self, paid: bool, input: &Input<OrderEvent>) -> bool {
//!         paid || matches!(input, Input::Event { event: OrderEvent::Paid { .. }, .. })
//!     }
//!     fn react(&self, paid: &bool, input: &Input<OrderEvent>) -> Reaction<PaymentCommand> {
//!         match input {
//!             Input::Event { event: OrderEvent::Placed { .. }, at, .. } => {
//!                 Reaction::none().set_timer("remind", *at + Duration::days(3))
//!             }
//!             Input::Event { event: OrderEvent::Paid { .. }, .. } => Reaction::none().cancel_timer("remind"),
//!             Input::TimerFired { .. } if !paid => {
//!                 Reaction::none().send(PaymentCommand::Remind { order: "o-1".into() })
//!             }
//!             _ => Reaction::none(),
//!         }
//!     }
//! }
//!
//! let origin = Origin::new(StreamId::new("order-o-1")?, Version::new(1), Position::new(1, 1));
//! let placed = Input::Event { event: OrderEvent::Placed { order: "o-1".into() }, at: Utc::now(), origin };
//! let reaction = Payments.react(&Payments.apply(false, &placed), &placed);
//! assert_eq!(reaction.set_timers[0].name, "remind");
//! let due = Input::TimerFired { name: "remind".into(), at: Utc::now() };
//! let reminders = Payments.react(&false, &due).commands;
//! assert!(matches!(&reminders[..], [PaymentCommand::Remind { order }] if order == "o-1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ids;
mod manager;
mod router;
mod runner;
mod store;

/// Re-exported from [`aggregate`](crate::aggregate), where the repository derives its events' ids with it.
pub use crate::aggregate::event_id_for;
pub use ids::command_id;
pub use manager::{Input, Origin, ProcessManager, Reaction, Timer};
pub use router::{CommandContext, CommandRouter, Outcome, RouteError};
pub use runner::{ProcessRunner, RunningProcess};
pub use store::{DueTimer, ProcessInstance, ProcessRecord, ProcessStore, TimerChanges};
