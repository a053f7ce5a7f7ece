//! Domain events: the typed facts an aggregate records, their stable stored names and schema versions, and the
//! upcasters that bring payloads stored by older releases up to the versions the code reads.
//!
//! This is the crate's lowest layer: it depends on no other concept module. The public paths are the crate root
//! ([`DomainEvent`](crate::DomainEvent), [`EventId`](crate::EventId)), [`store`](crate::store) for the codec
//! errors and [`evolution`](crate::evolution) for upcasting.

mod chain;
mod domain_event;
mod error;
mod id;
mod message;
mod serde_text;
mod upcast;
mod upcaster;

pub use chain::check;
#[doc(hidden)]
pub use chain::{assert_reached, assert_upcasters};
pub use domain_event::DomainEvent;
pub use error::{DecodeError, EncodeError};
pub use id::EventId;
pub use serde_text::serde_summary;
pub use upcast::{decode_payload, decode_text, reads};
pub use upcaster::{Transform, Upcaster, UpcasterError};
