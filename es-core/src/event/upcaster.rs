//! One upcaster: a pure step from a stored schema version of an event type to the next.

/// The payload transform of an [`Upcaster`]: a plain function (a closure that captures nothing), so upcasters can
/// be declared in a `const` and checked when the code compiles.
pub type Transform = fn(serde_json::Value) -> serde_json::Value;

/// One step of an event type's schema history: the payload stored as `(event_type, from)` becomes
/// `(to_type, to_version)` through a pure function on the JSON. Stored events are never rewritten; they are
/// upcast each time they are read.
///
/// Declare an event type's upcasters once, in a `const`, and name it on the type with
/// `#[event(upcasters = ...)]`: every read path that decodes the type (repository, typed reads, projections, process managers,
/// the relay, the schema check) runs the same chain, and a chain that does not reach the version the code reads
/// does not compile.
///
/// ```
/// use es_core::DomainEvent;
/// use es_core::evolution::Upcaster;
/// use serde_json::{json, Value};
///
/// // v1 stored `{"owner_name": ..}`; v2 renamed it to `owner`; v3 added `currency`.
/// const ACCOUNT_UPCASTERS: &[Upcaster] = &[
///     Upcaster::new("Opened", 1, |mut p: Value| {
///         p["owner"] = p["owner_name"].take();
///         p
///     }),
///     Upcaster::new("Opened", 2, |mut p: Value| {
///         p["currency"] = json!("EUR");
///         p
///     }),
/// ];
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// #[event(upcasters = ACCOUNT_UPCASTERS)]
/// enum AccountEvent {
///     #[event(version = 3)]
///     Opened { owner: String, currency: String },
/// }
///
/// let event: AccountEvent = es_core::evolution::decode_payload("Opened", 1, &json!({ "owner_name": "Ada" }))?;
/// assert_eq!(event, AccountEvent::Opened { owner: "Ada".into(), currency: "EUR".into() });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A missing step is a compile error naming it:
///
/// ```compile_fail,E0080
/// use es_core::DomainEvent;
/// use es_core::evolution::Upcaster;
///
/// const UPCASTERS: &[Upcaster] = &[Upcaster::new("Opened", 1, |p| p)]; // v1 → v2, but the code reads v3
///
/// #[derive(DomainEvent)]
/// #[event(upcasters = UPCASTERS)]
/// enum AccountEvent { #[event(version = 3)] Opened }
/// ```
#[derive(Clone, Copy)]
pub struct Upcaster {
    pub(crate) event_type: &'static str,
    pub(crate) from: u32,
    pub(crate) to_type: Option<&'static str>,
    pub(crate) to_version: u32,
    pub(crate) transform: Transform,
}

impl Upcaster {
    /// A step from `event_type` version `from` to version `from + 1`.
    pub const fn new(event_type: &'static str, from: u32, transform: Transform) -> Self {
        Self {
            event_type,
            from,
            to_type: None,
            to_version: from.saturating_add(1),
            transform,
        }
    }

    /// A step from `event_type` version `from` to another type (a renamed event) at `to_version`.
    ///
    /// ```
    /// use es_core::DomainEvent;
    /// use es_core::evolution::Upcaster;
    ///
    /// // Releases before 2.0 stored `LightOn`; today's code calls it `SwitchedOn`.
    /// const UPCASTERS: &[Upcaster] = &[Upcaster::renaming("LightOn", 1, "SwitchedOn", 1, |p| p)];
    ///
    /// #[derive(Debug, PartialEq, DomainEvent)]
    /// #[event(upcasters = UPCASTERS)]
    /// enum Light { SwitchedOn }
    ///
    /// let event: Light = es_core::evolution::decode_payload("LightOn", 1, &serde_json::json!({}))?;
    /// assert_eq!(event, Light::SwitchedOn);
    /// # Ok::<(), es_core::store::DecodeError>(())
    /// ```
    pub const fn renaming(
        event_type: &'static str,
        from: u32,
        to_type: &'static str,
        to_version: u32,
        transform: Transform,
    ) -> Self {
        Self {
            event_type,
            from,
            to_type: if super::chain::same(event_type, to_type) {
                None
            } else {
                Some(to_type)
            },
            to_version,
            transform,
        }
    }

    /// The stored type this step starts from.
    pub const fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// The stored schema version this step starts from.
    pub const fn from(&self) -> u32 {
        self.from
    }

    /// The type this step ends at.
    pub const fn to_type(&self) -> &'static str {
        match self.to_type {
            Some(to_type) => to_type,
            None => self.event_type,
        }
    }

    /// The schema version this step ends at.
    pub const fn to_version(&self) -> u32 {
        self.to_version
    }
}

impl std::fmt::Debug for Upcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} v{} -> {} v{}",
            self.event_type,
            self.from,
            self.to_type(),
            self.to_version
        )
    }
}

/// An event type's upcasters are inconsistent. `#[derive(DomainEvent)]` reports it as a compile error;
/// [`check`](crate::evolution::check) reports it at run time for a hand-written [`DomainEvent`](crate::DomainEvent).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpcasterError {
    /// Two upcasters for the same stored type and version.
    #[error("two upcasters for event type `{event_type}` version {from}")]
    Duplicate {
        /// The type.
        event_type: String,
        /// The version both start from.
        from: u32,
    },
    /// An upcaster that does not move forward (same type, target version not above the source).
    #[error("upcaster for `{event_type}` v{from} goes to v{to}, which is not later")]
    NotForward {
        /// The type.
        event_type: String,
        /// Its source version.
        from: u32,
        /// Its target version.
        to: u32,
    },
    /// A chain stops before the version the code reads: a link is missing.
    #[error(
        "no upcaster for event type `{event_type}` from version {from}: the chain stops before version {current}, which the code reads"
    )]
    MissingLink {
        /// The type.
        event_type: String,
        /// The version with no way forward.
        from: u32,
        /// The version the code reads.
        current: u32,
    },
    /// A chain goes beyond the version the code reads.
    #[error(
        "upcasters take event type `{event_type}` to version {to}, past version {current}, which the code reads"
    )]
    PastCurrent {
        /// The type.
        event_type: String,
        /// Where the chain ends.
        to: u32,
        /// The version the code reads.
        current: u32,
    },
    /// A chain ends at a type the event enum does not know.
    #[error("upcasters turn `{from_type}` into `{event_type}`, which the code does not know")]
    UnknownTarget {
        /// Where the chain started.
        from_type: String,
        /// The unknown type it ends at.
        event_type: String,
    },
    /// Renames lead back to where they started.
    #[error("upcasters starting at `{event_type}` v{from} go round in a circle")]
    Cycle {
        /// Where the circle was entered.
        event_type: String,
        /// The version there.
        from: u32,
    },
}
