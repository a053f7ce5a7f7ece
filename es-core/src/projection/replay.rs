//! Replays that cannot double-count: a rebuild or a reset to an earlier position replays events onto the read
//! model, so the runner carries one out only when the read model says how it takes it — it resets (the framework
//! owns it, or the projection empties it), or its handlers are idempotent. Otherwise the request is refused with
//! [`WorkerError::ReplayRefused`], before anything changed.

use crate::projection::HandlerError;
use crate::projection::worker::WorkerError;
use crate::store::Position;

/// What [`Projection::reset`](crate::Projection::reset) (and the PostgreSQL and SQLite projections' `reset`)
/// returns when the projection does not say how its read model resets. A rebuild of such a projection is refused,
/// unless its handlers are idempotent.
///
/// ```
/// use es_core::projection::NoReset;
///
/// let error: es_core::projection::HandlerError = Box::new(NoReset);
/// assert!(error.is::<NoReset>());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the projection does not say how its read model resets")]
pub struct NoReset;

/// A replay the runner refused: what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// A rebuild: every event again, from the start.
    Rebuild,
    /// A reset to `to`, before the checkpoint: the events between them again.
    ResetBack {
        /// Where the checkpoint was to go.
        to: Position,
        /// Where it is.
        checkpoint: Position,
    },
}

impl std::fmt::Display for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rebuild => f.write_str(
                "a rebuild would replay every event onto the rows it holds; implement `reset` to empty its read \
                 model, or mark its handlers `idempotent` if applying an event twice changes nothing",
            ),
            Self::ResetBack { to, checkpoint } => write!(
                f,
                "a reset to {to} would apply the events up to its checkpoint {checkpoint} a second time; mark \
                 its handlers `idempotent` if applying an event twice changes nothing, or rebuild it"
            ),
        }
    }
}

/// What the projection's `reset` returned, when the worker owns the read model and has emptied it itself: then a
/// projection without a reset of its own ([`NoReset`]) is fine.
///
/// ```
/// use es_core::backend::owned_reset;
/// use es_core::projection::NoReset;
///
/// assert!(owned_reset(Err(Box::new(NoReset))).is_ok());
/// assert!(owned_reset(Err("disk full".into())).is_err());
/// ```
///
/// # Errors
/// The projection's own error, other than [`NoReset`].
pub fn owned_reset(reset: Result<(), HandlerError>) -> Result<(), HandlerError> {
    reset.or_else(|error| match error.is::<NoReset>() {
        true => Ok(()),
        false => Err(error),
    })
}

/// Whether a rebuild may go on, given what the projection's `reset` returned: yes when it reset its read model,
/// or when it has none to reset ([`NoReset`]) and its handlers are idempotent.
///
/// # Errors
/// [`WorkerError::ReplayRefused`] for [`NoReset`] from a projection whose handlers are not idempotent;
/// [`WorkerError::Reset`] for any other error of `reset`.
///
/// ```
/// use es_core::backend::{WorkerError, rebuild_allowed};
/// use es_core::projection::NoReset;
///
/// assert!(rebuild_allowed("totals", Ok(()), false).is_ok());
/// assert!(rebuild_allowed("relay", Err(Box::new(NoReset)), true).is_ok());
/// assert!(matches!(rebuild_allowed("totals", Err(Box::new(NoReset)), false), Err(WorkerError::ReplayRefused { .. })));
/// ```
pub fn rebuild_allowed(
    projection: &str,
    reset: Result<(), HandlerError>,
    idempotent: bool,
) -> Result<(), WorkerError> {
    match reset {
        Ok(()) => Ok(()),
        Err(error) if error.is::<NoReset>() => match idempotent {
            true => Ok(()),
            false => Err(WorkerError::ReplayRefused {
                projection: projection.to_owned(),
                replay: Replay::Rebuild,
            }),
        },
        Err(error) => Err(WorkerError::Reset {
            projection: projection.to_owned(),
            error: error.to_string(),
        }),
    }
}

/// Whether the checkpoint may move from `checkpoint` to `to`: forward always (the events between are skipped,
/// as asked); back only for idempotent handlers.
///
/// # Errors
/// [`WorkerError::ReplayRefused`] for a move back on a projection whose handlers are not idempotent.
///
/// ```
/// use es_core::backend::reset_allowed;
/// use es_core::Position;
///
/// let (early, late) = (Position::new(1, 1), Position::new(9, 9));
/// assert!(reset_allowed("totals", Some(early), late, false).is_ok()); // forward: skips, as asked
/// assert!(reset_allowed("totals", Some(late), early, false).is_err()); // back: would count twice
/// assert!(reset_allowed("relay", Some(late), early, true).is_ok());
/// ```
pub fn reset_allowed(
    projection: &str,
    checkpoint: Option<Position>,
    to: Position,
    idempotent: bool,
) -> Result<(), WorkerError> {
    match checkpoint {
        Some(checkpoint) if to < checkpoint && !idempotent => Err(WorkerError::ReplayRefused {
            projection: projection.to_owned(),
            replay: Replay::ResetBack { to, checkpoint },
        }),
        _ => Ok(()),
    }
}
