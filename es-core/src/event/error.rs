//! What can go wrong turning a typed event into JSON and back.

use super::serde_text::serde_summary;

/// A typed event could not be turned into JSON. A bug in the event type (a map with non-string keys, a failing
/// `Serialize` impl): retrying will not help.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event of type `{event_type}` to JSON: {source}")]
pub struct EncodeError {
    /// The event type.
    pub event_type: &'static str,
    /// What serde reported.
    #[source]
    pub source: serde_json::Error,
}

/// A stored payload did not decode into a typed event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The stored type name is not one this event type knows (an event from newer code, a renamed variant
    /// without an alias, or an event of another aggregate in this stream).
    #[error("unknown event type `{event_type}`; known types: {known:?}")]
    UnknownType {
        /// The stored type name.
        event_type: String,
        /// The type names the decoder knows.
        known: &'static [&'static str],
    },
    /// The payload was written with another schema version than this code reads; register an upcaster for it.
    #[error(
        "event type `{event_type}` is stored at schema version {stored}, this code reads version {expected}"
    )]
    SchemaVersion {
        /// The type name.
        event_type: &'static str,
        /// The stored schema version.
        stored: u32,
        /// The schema version this code reads.
        expected: u32,
    },
    /// The stored version is older than the one the code reads, and no upcaster leads from it.
    #[error(
        "event type `{event_type}` is stored at version {stored}; no upcaster leads from it to version {current}, which the code reads"
    )]
    MissingUpcaster {
        /// The type.
        event_type: String,
        /// The version reached (the stored one, or where the chain stopped).
        stored: u32,
        /// The version the code reads.
        current: u32,
    },
    /// The stored payload is not JSON at all.
    #[error("payload of event type `{event_type}` is not valid JSON: {}", serde_summary(.source))]
    InvalidJson {
        /// The stored type name.
        event_type: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The payload does not fit the type.
    #[error("payload of event type `{event_type}` does not decode: {}", serde_summary(.source))]
    Payload {
        /// The type name.
        event_type: &'static str,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}
