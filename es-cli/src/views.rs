//! What the CLI's `--json` prints and the admin page's JSON API answers: the same shapes. A position is encoded one
//! way everywhere, as [`Position`] serializes: `{"commit": C, "prepare": P}` (the text form `C/P` is what tables
//! print and what `--to`, `?position=` and the page's inputs take).

use chrono::{DateTime, Utc};
use es_core::control::OperatorStore;
use es_core::projection::DeadLetter;
use es_core::{EventId, Position, RecordedEvent, Version};
use serde::Serialize;

/// An event; its payload and metadata only when the operator asked for them.
#[derive(Debug, Serialize)]
pub(crate) struct EventView {
    pub(crate) position: Position,
    pub(crate) stream_id: String,
    pub(crate) version: Version,
    pub(crate) event_id: EventId,
    pub(crate) event_type: String,
    pub(crate) schema_version: u32,
    pub(crate) recorded_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<serde_json::Value>,
}

impl EventView {
    pub(crate) fn of(event: &RecordedEvent, payloads: bool) -> Self {
        Self {
            position: event.position,
            stream_id: event.stream_id.to_string(),
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            payload: payloads.then(|| event.payload.clone()),
            metadata: payloads
                .then(|| serde_json::to_value(&event.metadata).ok())
                .flatten(),
        }
    }
}

/// A dead letter and, when asked for, its event's payload.
#[derive(Debug, Serialize)]
pub(crate) struct DeadLetterView {
    #[serde(flatten)]
    pub(crate) letter: DeadLetter,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<serde_json::Value>,
}

impl DeadLetterView {
    pub(crate) fn of(letter: DeadLetter, payload: Option<serde_json::Value>) -> Self {
        Self { letter, payload }
    }
}

/// The dead letter of `event_id` in `projection`, with its event's payload when `payloads`; `None` when there is
/// no such letter.
pub(crate) async fn dead_letter<S: OperatorStore>(
    app: &crate::app::App<S>,
    projection: &str,
    event_id: EventId,
    payloads: bool,
) -> Result<Option<DeadLetterView>, es_core::StoreError> {
    let Some(letter) = app.operator.dead_letter(projection, event_id).await? else {
        return Ok(None);
    };
    let payload = match payloads {
        false => None,
        true => app
            .operator
            .event_at(letter.position)
            .await?
            .filter(|e| e.event_id == event_id)
            .map(|e| e.payload),
    };
    Ok(Some(DeadLetterView::of(letter, payload)))
}

/// A position as printed: `COMMIT/PREPARE`, `-` for none.
pub(crate) fn position(position: Option<Position>) -> String {
    position.map_or_else(|| "-".to_owned(), |p| p.to_string())
}
