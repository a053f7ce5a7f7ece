//! What an operator asks of a projection, and the answers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::store::{EventId, Position};

/// A control request's command, carried out by the process that runs the projection.
///
/// Stored as JSON (`{"kind":"reset_to","position":{"commit":7,"prepare":10}}`), so the CLI, the admin page and
/// another service write the same request.
///
/// ```
/// use es_core::control::ControlCommand;
/// use es_core::Position;
///
/// let reset = ControlCommand::ResetTo { position: Position::new(7, 10) };
/// assert_eq!(reset.to_string(), "reset to 7/10");
/// assert_eq!(serde_json::from_value::<ControlCommand>(serde_json::to_value(&reset)?)?, reset);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlCommand {
    /// Stop reading events until resumed. Durable: the instance that takes over from this one stays paused.
    Pause,
    /// Read on after a pause.
    Resume,
    /// Empty the read model and the checkpoint, and replay every event.
    Rebuild,
    /// Move the checkpoint to `position`: events after it are handled next.
    ResetTo {
        /// The new checkpoint.
        position: Position,
    },
    /// Handle dead letters again: one (`event_id`), or all of them in position order (`None`).
    Redrive {
        /// The dead letter's event; `None` for all.
        event_id: Option<EventId>,
    },
    /// Drop a dead letter without handling its event.
    Discard {
        /// The dead letter's event.
        event_id: EventId,
    },
}

impl fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pause => f.write_str("pause"),
            Self::Resume => f.write_str("resume"),
            Self::Rebuild => f.write_str("rebuild"),
            Self::ResetTo { position } => write!(f, "reset to {position}"),
            Self::Redrive { event_id: None } => f.write_str("redrive all dead letters"),
            Self::Redrive { event_id: Some(id) } => write!(f, "redrive dead letter {id}"),
            Self::Discard { event_id } => write!(f, "discard dead letter {event_id}"),
        }
    }
}

/// How a control request ended. Every request gets one: it is never dropped silently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlAnswer {
    /// Carried out; `detail` says what happened (`2 redriven, 1 still failing`).
    Done {
        /// What it did.
        detail: String,
    },
    /// Refused, and why (no such dead letter, the projection failed, the reset failed...). Nothing changed.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Nobody answered in time. `claimed_by` is `None` when no instance took the request: it was withdrawn and will
    /// not be carried out. When an instance had taken it, it may still finish: look at the projection's status.
    TimedOut {
        /// The instance that had taken it, if one had.
        claimed_by: Option<String>,
    },
}

impl ControlAnswer {
    /// Whether it was carried out.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done { .. })
    }
}

impl fmt::Display for ControlAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done { detail } => write!(f, "done: {detail}"),
            Self::Rejected { reason } => write!(f, "rejected: {reason}"),
            Self::TimedOut { claimed_by: None } => {
                f.write_str("timed out: no running instance took the request; it was withdrawn")
            }
            Self::TimedOut {
                claimed_by: Some(instance),
            } => write!(
                f,
                "timed out: {instance} took the request and has not answered yet; it may still finish"
            ),
        }
    }
}
