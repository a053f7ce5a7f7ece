//! Checking an event type's upcasters: every chain must end at a type and version the code reads. Written as
//! `const fn`s so `#[derive(DomainEvent)]` runs the check while the code compiles; [`check`] runs the same at
//! run time.

use super::domain_event::DomainEvent;
use super::message::Message;
use super::upcaster::{Upcaster, UpcasterError};

/// What is wrong with a set of upcasters (the borrowed form of [`UpcasterError`]).
#[derive(Clone, Copy)]
pub(crate) enum Problem {
    Duplicate {
        event_type: &'static str,
        from: u32,
    },
    NotForward {
        event_type: &'static str,
        from: u32,
        to: u32,
    },
    MissingLink {
        event_type: &'static str,
        from: u32,
        current: u32,
    },
    PastCurrent {
        event_type: &'static str,
        to: u32,
        current: u32,
    },
    UnknownTarget {
        from_type: &'static str,
        event_type: &'static str,
    },
    Cycle {
        event_type: &'static str,
        from: u32,
    },
}

/// String equality usable in `const fn`.
pub(crate) const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The version the code reads for `event_type`, from `(type, version)` pairs.
const fn current(schema: &[(&str, u32)], event_type: &str) -> Option<u32> {
    let mut i = 0;
    while i < schema.len() {
        if same(schema[i].0, event_type) {
            return Some(schema[i].1);
        }
        i += 1;
    }
    None
}

/// The step starting at `(event_type, from)`.
pub(crate) const fn link<'a>(
    upcasters: &'a [Upcaster],
    event_type: &str,
    from: u32,
) -> Option<&'a Upcaster> {
    let mut i = 0;
    while i < upcasters.len() {
        let step = &upcasters[i];
        if step.from == from && same(step.event_type, event_type) {
            return Some(step);
        }
        i += 1;
    }
    None
}

/// Follows the chain from `start` and says what is wrong with where it ends, if anything.
const fn chain_problem(
    schema: &[(&str, u32)],
    upcasters: &[Upcaster],
    start: &Upcaster,
) -> Option<Problem> {
    let (mut event_type, mut version) = (start.event_type, start.from);
    // Each step either ends the walk or is taken; more steps than there are upcasters means a circle.
    let mut steps = 0;
    while steps <= upcasters.len() {
        let reads = current(schema, event_type);
        if let Some(reads) = reads
            && reads == version
        {
            return None;
        }
        match (link(upcasters, event_type, version), reads) {
            (Some(step), _) => {
                event_type = step.to_type();
                version = step.to_version;
            }
            (None, Some(reads)) if version < reads => {
                return Some(Problem::MissingLink {
                    event_type,
                    from: version,
                    current: reads,
                });
            }
            (None, Some(reads)) => {
                return Some(Problem::PastCurrent {
                    event_type,
                    to: version,
                    current: reads,
                });
            }
            (None, None) => {
                return Some(Problem::UnknownTarget {
                    from_type: start.event_type,
                    event_type,
                });
            }
        }
        steps += 1;
    }
    Some(Problem::Cycle {
        event_type: start.event_type,
        from: start.from,
    })
}

/// The first problem of `upcasters` for code that reads the `(type, version)` pairs of `schema`.
pub(crate) const fn problem(schema: &[(&str, u32)], upcasters: &[Upcaster]) -> Option<Problem> {
    let mut i = 0;
    while i < upcasters.len() {
        let step = &upcasters[i];
        if step.to_type.is_none() && step.to_version <= step.from {
            return Some(Problem::NotForward {
                event_type: step.event_type,
                from: step.from,
                to: step.to_version,
            });
        }
        let mut j = 0;
        while j < i {
            if upcasters[j].from == step.from && same(upcasters[j].event_type, step.event_type) {
                return Some(Problem::Duplicate {
                    event_type: step.event_type,
                    from: step.from,
                });
            }
            j += 1;
        }
        if let Some(reads) = current(schema, step.event_type)
            && step.to_type.is_none()
            && step.from >= reads
        {
            return Some(Problem::PastCurrent {
                event_type: step.event_type,
                to: step.to_version,
                current: reads,
            });
        }
        if let Some(problem) = chain_problem(schema, upcasters, step) {
            return Some(problem);
        }
        i += 1;
    }
    None
}

impl Problem {
    /// The problem as a compile-time message about the event type `owner`.
    const fn message(self, owner: &str) -> Message {
        let m = Message::new()
            .text("the upcasters of `")
            .text(owner)
            .text("`: ");
        match self {
            Self::Duplicate { event_type, from } => m
                .text("two upcasters for event type `")
                .text(event_type)
                .text("` version ")
                .number(from),
            Self::NotForward {
                event_type,
                from,
                to,
            } => m
                .text("the upcaster for `")
                .text(event_type)
                .text("` v")
                .number(from)
                .text(" goes to v")
                .number(to)
                .text(", which is not later"),
            Self::MissingLink {
                event_type,
                from,
                current,
            } => m
                .text("no upcaster for event type `")
                .text(event_type)
                .text("` from version ")
                .number(from)
                .text(": the chain stops before version ")
                .number(current)
                .text(", which the code reads"),
            Self::PastCurrent {
                event_type,
                to,
                current,
            } => m
                .text("they take event type `")
                .text(event_type)
                .text("` to version ")
                .number(to)
                .text(", past version ")
                .number(current)
                .text(", which the code reads"),
            Self::UnknownTarget {
                from_type,
                event_type,
            } => m
                .text("they turn `")
                .text(from_type)
                .text("` into `")
                .text(event_type)
                .text("`, which the code does not know"),
            Self::Cycle { event_type, from } => m
                .text("the chain starting at `")
                .text(event_type)
                .text("` v")
                .number(from)
                .text(" goes round in a circle"),
        }
    }
}

impl From<Problem> for UpcasterError {
    fn from(problem: Problem) -> Self {
        match problem {
            Problem::Duplicate { event_type, from } => Self::Duplicate {
                event_type: event_type.to_owned(),
                from,
            },
            Problem::NotForward {
                event_type,
                from,
                to,
            } => Self::NotForward {
                event_type: event_type.to_owned(),
                from,
                to,
            },
            Problem::MissingLink {
                event_type,
                from,
                current,
            } => Self::MissingLink {
                event_type: event_type.to_owned(),
                from,
                current,
            },
            Problem::PastCurrent {
                event_type,
                to,
                current,
            } => Self::PastCurrent {
                event_type: event_type.to_owned(),
                to,
                current,
            },
            Problem::UnknownTarget {
                from_type,
                event_type,
            } => Self::UnknownTarget {
                from_type: from_type.to_owned(),
                event_type: event_type.to_owned(),
            },
            Problem::Cycle { event_type, from } => Self::Cycle {
                event_type: event_type.to_owned(),
                from,
            },
        }
    }
}

/// Checks that every chain of `E`'s [`UPCASTERS`](DomainEvent::UPCASTERS) ends at a type and version `E` reads.
/// `#[derive(DomainEvent)]` already did this when the code compiled; call it for a hand-written `DomainEvent`.
///
/// ```
/// use es_core::DomainEvent;
///
/// #[derive(DomainEvent)]
/// enum Light { SwitchedOn }
///
/// es_core::evolution::check::<Light>()?;
/// # Ok::<(), es_core::evolution::UpcasterError>(())
/// ```
///
/// # Errors
/// The first [`UpcasterError`] found.
pub fn check<E: DomainEvent>() -> Result<(), UpcasterError> {
    let schema: Vec<(&str, u32)> = E::EVENT_TYPES
        .iter()
        .filter_map(|&event_type| Some((event_type, E::current_schema_version(event_type)?)))
        .collect();
    problem(&schema, E::UPCASTERS).map_or(Ok(()), |p| Err(p.into()))
}

/// Fails the build when `upcasters` do not fit `schema`, the `(type, version)` pairs the event type `owner`
/// reads. What `#[derive(DomainEvent)]` expands to; not a public API.
#[doc(hidden)]
#[allow(
    clippy::panic,
    reason = "evaluated only while compiling: the panic is the compile error"
)]
pub const fn assert_upcasters(owner: &str, schema: &[(&str, u32)], upcasters: &[Upcaster]) {
    if let Some(problem) = problem(schema, upcasters) {
        let message = problem.message(owner);
        panic!("{}", message.as_str());
    }
}

/// Whether `(event_type, version)` is reached by the upcasters from `(event_type, since)`: a chain starts there (the
/// chains themselves are checked by [`problem`]), or a renaming lands on it.
const fn reached(upcasters: &[Upcaster], event_type: &str, version: u32, since: u32) -> bool {
    if version <= since || link(upcasters, event_type, since).is_some() {
        return true;
    }
    let mut i = 0;
    while i < upcasters.len() {
        let step = &upcasters[i];
        if step.to_type.is_some() && step.to_version == version && same(step.to_type(), event_type)
        {
            return true;
        }
        i += 1;
    }
    false
}

/// Fails the build when an event type is read at a version above the first one stored (`since`, default 1) and no
/// upcaster leads there from it: stored events of that older version could only fail when read. Called by
/// `#[derive(DomainEvent)]` with `(type, version, since)` triples.
#[doc(hidden)]
#[allow(
    clippy::panic,
    reason = "evaluated only while compiling: the panic is the compile error"
)]
pub const fn assert_reached(owner: &str, history: &[(&str, u32, u32)], upcasters: &[Upcaster]) {
    let mut i = 0;
    while i < history.len() {
        let (event_type, version, since) = history[i];
        if !reached(upcasters, event_type, version, since) {
            let message = Message::new()
                .text("the upcasters of `")
                .text(owner)
                .text("`: none starts at event type `")
                .text(event_type)
                .text("` version ")
                .number(since)
                .text(", so stored events of that version could never reach version ")
                .number(version)
                .text(", which the code reads (write `since = N` on the variant if none was stored before version N)");
            panic!("{}", message.as_str());
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(p: serde_json::Value) -> serde_json::Value {
        p
    }

    fn first(schema: &[(&str, u32)], upcasters: &[Upcaster]) -> Option<UpcasterError> {
        problem(schema, upcasters).map(UpcasterError::from)
    }

    #[test]
    fn a_complete_chain_has_no_problem() {
        let ups = [Upcaster::new("A", 1, keep), Upcaster::new("A", 2, keep)];
        assert_eq!(first(&[("A", 3)], &ups), None);
    }

    #[test]
    fn each_kind_of_problem_is_named() {
        let schema = [("A", 3), ("B", 1)];
        let missing = first(&schema, &[Upcaster::new("A", 1, keep)]);
        assert!(matches!(
            missing,
            Some(UpcasterError::MissingLink {
                from: 2,
                current: 3,
                ..
            })
        ));
        let past = first(&schema, &[Upcaster::new("A", 3, keep)]);
        assert!(matches!(
            past,
            Some(UpcasterError::PastCurrent {
                to: 4,
                current: 3,
                ..
            })
        ));
        let twice = first(
            &schema,
            &[Upcaster::new("A", 2, keep), Upcaster::new("A", 2, keep)],
        );
        assert!(matches!(
            twice,
            Some(UpcasterError::Duplicate { from: 2, .. })
        ));
        let backwards = first(&schema, &[Upcaster::renaming("A", 2, "A", 1, keep)]);
        assert!(matches!(
            backwards,
            Some(UpcasterError::NotForward { from: 2, to: 1, .. })
        ));
        let unknown = first(&schema, &[Upcaster::renaming("Old", 1, "Gone", 1, keep)]);
        assert_eq!(
            unknown,
            Some(UpcasterError::UnknownTarget {
                from_type: "Old".into(),
                event_type: "Gone".into()
            })
        );
        let circle = [
            Upcaster::renaming("X", 1, "Y", 1, keep),
            Upcaster::renaming("Y", 1, "X", 1, keep),
        ];
        assert!(matches!(
            first(&schema, &circle),
            Some(UpcasterError::Cycle { .. })
        ));
    }

    #[test]
    fn the_compile_time_message_names_the_type_and_the_gap() {
        let problem = problem(&[("Opened", 3)], &[Upcaster::new("Opened", 1, keep)]);
        let message = problem.map(|p| p.message("AccountEvent"));
        assert_eq!(
            message.as_ref().map(Message::as_str),
            Some(
                "the upcasters of `AccountEvent`: no upcaster for event type `Opened` from version 2: the chain \
                 stops before version 3, which the code reads"
            )
        );
    }
}
