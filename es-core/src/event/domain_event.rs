//! [`DomainEvent`]: a typed event's stable stored names, schema versions and JSON codec.

use super::error::{DecodeError, EncodeError};
use super::upcaster::Upcaster;

/// A typed domain event that can be stored: a stable type name, a schema version and a JSON payload.
///
/// Derive it with `#[derive(DomainEvent)]` (feature `derive`, on by default): on an enum each variant is one
/// event type named after the variant (`#[event(rename = "...")]` to choose), with schema version 1
/// (`#[event(version = N)]`; a version above 1 needs upcasters from version 1, or `since = N` when no event of the
/// type was stored before version N: else it does not compile); on the type, `#[event(aggregate = Order)]` (the
/// aggregate's [`CATEGORY`](crate::Aggregate::CATEGORY): required of an aggregate's event type, see
/// [`Repository::new`](crate::Repository::new)), `#[event(category = "...")]` for categories of other writers, and
/// `#[event(upcasters = ...)]`. The payload of a variant with named fields is an object of those fields; of a
/// one-field tuple variant, the field's own JSON; of a unit variant, `{}`. On a struct (which must implement
/// serde's `Serialize` and `Deserialize`) the struct is the one event type.
///
/// ```
/// use es_core::DomainEvent;
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// enum AccountEvent {
///     Opened { owner: String },
///     #[event(rename = "MoneyDeposited", version = 2, since = 2)]
///     Deposited { amount: u64 },
///     Closed,
/// }
///
/// let event = AccountEvent::Deposited { amount: 5 };
/// assert_eq!(event.event_type(), "MoneyDeposited");
/// assert_eq!(event.schema_version(), 2);
/// let payload = event.encode()?;
/// assert_eq!(payload, serde_json::json!({ "amount": 5 }));
/// assert_eq!(AccountEvent::decode("MoneyDeposited", 2, &payload)?, event);
/// assert_eq!(AccountEvent::EVENT_TYPES, ["Opened", "MoneyDeposited", "Closed"]);
/// assert_eq!(AccountEvent::current_schema_version("MoneyDeposited"), Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait DomainEvent: Sized + Send + Sync + 'static {
    /// Every event type name this type decodes, in declaration order.
    const EVENT_TYPES: &'static [&'static str];

    /// The stream categories its events are stored in (`#[event(aggregate = Order)]` on the type for the
    /// aggregate's [`CATEGORY`](crate::Aggregate::CATEGORY), `#[event(category = "order")]` for any other):
    /// projections reading this type see only events of these categories. Empty (the default, allowed only for
    /// types no aggregate records, such as a read model's view of several): every category.
    const CATEGORIES: &'static [&'static str] = &[];

    /// The type's schema history: the [`Upcaster`](crate::evolution::Upcaster)s that bring payloads stored by
    /// older releases up to the versions this code reads (`#[event(upcasters = ...)]` on the type, checked when it
    /// compiles). Every read path decodes through them; see [`evolution`](crate::evolution). Empty by default.
    const UPCASTERS: &'static [Upcaster] = &[];

    /// The schema version this code writes and reads for `event_type`; `None` for a type it does not know.
    /// Upcasters bring older stored versions up to it.
    fn current_schema_version(event_type: &str) -> Option<u32>;

    /// The stable stored name of this event's type (not the Rust path).
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for this event's type (1 or more).
    fn schema_version(&self) -> u32;

    /// The event's tags (`kind:id`), stored with it for [`Query`](crate::store::Query) reads and conditional
    /// appends. `#[derive(DomainEvent)]` makes one per field marked `#[tag]` (`#[tag = "kind"]` names the kind;
    /// by default the field's name): `Enrolled { #[tag] student: u32, #[tag] course: u32 }` carries
    /// `student:7` and `course:3`. None by default.
    fn tags(&self) -> Vec<String> {
        Vec::new()
    }

    /// The JSON payload.
    ///
    /// # Errors
    /// [`EncodeError`] when the payload cannot be represented as JSON (a map with non-string keys, say).
    fn encode(&self) -> Result<serde_json::Value, EncodeError>;

    /// Decodes a stored payload of type `event_type` written with schema `schema_version`.
    ///
    /// # Errors
    /// [`DecodeError::UnknownType`] for a type this enum does not know, [`DecodeError::SchemaVersion`] for a schema
    /// version other than the current one (register an upcaster), [`DecodeError::Payload`] when the JSON does not fit.
    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: &serde_json::Value,
    ) -> Result<Self, DecodeError>;

    /// Decodes a stored payload given as JSON text, as [`decode`](Self::decode) does. `#[derive(DomainEvent)]`
    /// decodes straight from the text, without building a `serde_json::Value` (how loads stay close to a raw
    /// select); this default parses a `Value` first.
    ///
    /// ```
    /// use es_core::DomainEvent;
    ///
    /// #[derive(Debug, PartialEq, DomainEvent)]
    /// enum Light { SwitchedOn { lux: u32 } }
    ///
    /// let on = Light::decode_str("SwitchedOn", 1, r#"{"lux": 300}"#)?;
    /// assert_eq!(on, Light::SwitchedOn { lux: 300 });
    /// # Ok::<(), es_core::store::DecodeError>(())
    /// ```
    ///
    /// # Errors
    /// As [`decode`](Self::decode), and [`DecodeError::InvalidJson`] when the text is not JSON.
    fn decode_str(
        event_type: &str,
        schema_version: u32,
        payload: &str,
    ) -> Result<Self, DecodeError> {
        let value: serde_json::Value =
            serde_json::from_str(payload).map_err(|source| DecodeError::InvalidJson {
                event_type: event_type.to_owned(),
                source,
            })?;
        Self::decode(event_type, schema_version, &value)
    }
}
