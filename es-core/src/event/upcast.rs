//! Decoding stored payloads through their type's upcasters: what every read path calls.

use std::borrow::Cow;

use super::chain::link;
use super::domain_event::DomainEvent;
use super::error::DecodeError;

/// Whether `E` decodes events stored as `event_type`: a type it reads, or one its upcasters start from.
///
/// ```
/// use es_core::DomainEvent;
/// use es_core::evolution::{Upcaster, reads};
///
/// #[derive(DomainEvent)]
/// #[event(upcasters = &[Upcaster::renaming("LightOn", 1, "SwitchedOn", 1, |p| p)])]
/// enum Light { SwitchedOn }
///
/// assert!(reads::<Light>("SwitchedOn") && reads::<Light>("LightOn") && !reads::<Light>("Dimmed"));
/// ```
pub fn reads<E: DomainEvent>(event_type: &str) -> bool {
    E::current_schema_version(event_type).is_some()
        || E::UPCASTERS
            .iter()
            .any(|step| step.event_type == event_type)
}

/// Upcasts a stored payload as far as `E`'s upcasters go and decodes it.
///
/// # Errors
/// [`DecodeError::MissingUpcaster`] when the stored version is older than the code's and no chain leads up;
/// the errors of [`DomainEvent::decode`] otherwise.
pub fn decode_payload<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    payload: &serde_json::Value,
) -> Result<E, DecodeError> {
    let (mut t, mut v, mut payload) = (event_type, schema_version, Cow::Borrowed(payload));
    // Each step either ends the walk or is taken; the derive rules out circles, and the bound stops a circle in a
    // hand-written `UPCASTERS` from looping.
    for _ in 0..=E::UPCASTERS.len() {
        let reads = E::current_schema_version(t);
        if reads == Some(v) {
            break;
        }
        match (link(E::UPCASTERS, t, v), reads) {
            (Some(step), _) => {
                payload = Cow::Owned((step.transform)(payload.into_owned()));
                t = step.to_type();
                v = step.to_version;
            }
            (None, Some(current)) if v < current => {
                return Err(DecodeError::MissingUpcaster {
                    event_type: t.to_owned(),
                    stored: v,
                    current,
                });
            }
            // Past the version the code reads, or at a type it does not know: the decoder says which.
            (None, _) => break,
        }
    }
    E::decode(t, v, &payload)
}

/// Decodes a stored payload given as JSON text: straight from the text when it is at the version the code reads
/// (no upcaster to run), else parsed and upcast as [`decode_payload`] does.
///
/// # Errors
/// As [`decode_payload`], and [`DecodeError::InvalidJson`].
pub fn decode_text<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<E, DecodeError> {
    if E::current_schema_version(event_type) == Some(schema_version) {
        return E::decode_str(event_type, schema_version, payload);
    }
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|source| DecodeError::InvalidJson {
            event_type: event_type.to_owned(),
            source,
        })?;
    decode_payload(event_type, schema_version, &value)
}
