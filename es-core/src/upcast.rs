//! Upcasters: read-time schema evolution of stored events.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::error::{DecodeError, EventDecodeError};
use crate::{DomainEvent, EventView, PayloadView, RecordedEvent};

type Transform = Arc<dyn Fn(serde_json::Value) -> serde_json::Value + Send + Sync>;

/// One step: a stored `(type, version)` becomes `(to_type, to_version)` through a pure payload transform.
#[derive(Clone)]
struct Link {
    to_type: Option<String>,
    to_version: u32,
    transform: Transform,
}

/// A registry of upcasters: pure functions that bring a stored payload from one schema version to the next.
/// Stored events are never rewritten; they are upcast each time they are read, on every read path that decodes
/// (the repository, [`TypedRead`](crate::TypedRead), projections).
///
/// To change an event's shape: bump its `#[event(version = N)]`, register one function from `N - 1` to `N`.
/// Chains run until the version the code reads, so events written many releases ago still load.
///
/// ```
/// use es_core::{DomainEvent, Upcasters};
/// use serde_json::{json, Value};
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// enum AccountEvent {
///     // v1 stored `{"owner_name": ..}`; v2 renamed it to `owner`; v3 added `currency`.
///     #[event(version = 3)]
///     Opened { owner: String, currency: String },
/// }
///
/// let upcasters = Upcasters::new()
///     .add("Opened", 1, |mut p: Value| {
///         p["owner"] = p["owner_name"].take();
///         p
///     })?
///     .add("Opened", 2, |mut p: Value| {
///         p["currency"] = json!("EUR");
///         p
///     })?;
/// upcasters.check::<AccountEvent>()?; // every chain reaches the version the code reads
///
/// let event: AccountEvent = upcasters.decode_payload("Opened", 1, &json!({ "owner_name": "Ada" }))?;
/// assert_eq!(event, AccountEvent::Opened { owner: "Ada".into(), currency: "EUR".into() });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    links: HashMap<String, BTreeMap<u32, Link>>,
}

/// An upcaster registry is inconsistent. Found when registering or by [`Upcasters::check`]; fix the
/// registrations.
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
}

impl Upcasters {
    /// An empty registry: events are decoded as stored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `transform` from `event_type` version `from` to version `from + 1`.
    ///
    /// # Errors
    /// [`UpcasterError::Duplicate`] when that step is already registered.
    pub fn add(
        self,
        event_type: &str,
        from: u32,
        transform: impl Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) -> Result<Self, UpcasterError> {
        self.insert(
            event_type,
            from,
            None,
            from.saturating_add(1),
            Arc::new(transform),
        )
    }

    /// Registers `transform` from `event_type` version `from` to another type (a renamed event) at `to_version`.
    ///
    /// # Errors
    /// [`UpcasterError::Duplicate`] when a step from `(event_type, from)` is already registered.
    pub fn add_renaming(
        self,
        event_type: &str,
        from: u32,
        to_type: &str,
        to_version: u32,
        transform: impl Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) -> Result<Self, UpcasterError> {
        let to_type = (to_type != event_type).then(|| to_type.to_owned());
        self.insert(event_type, from, to_type, to_version, Arc::new(transform))
    }

    fn insert(
        mut self,
        event_type: &str,
        from: u32,
        to_type: Option<String>,
        to_version: u32,
        transform: Transform,
    ) -> Result<Self, UpcasterError> {
        if to_type.is_none() && to_version <= from {
            return Err(UpcasterError::NotForward {
                event_type: event_type.to_owned(),
                from,
                to: to_version,
            });
        }
        let steps = self.links.entry(event_type.to_owned()).or_default();
        if steps.contains_key(&from) {
            return Err(UpcasterError::Duplicate {
                event_type: event_type.to_owned(),
                from,
            });
        }
        steps.insert(
            from,
            Link {
                to_type,
                to_version,
                transform,
            },
        );
        Ok(self)
    }

    /// Checks that every registered chain ends at a type and version `E` reads.
    ///
    /// # Errors
    /// The first [`UpcasterError`] found.
    pub fn check<E: DomainEvent>(&self) -> Result<(), UpcasterError> {
        for (event_type, steps) in &self.links {
            for (&from, link) in steps {
                if let Some(current) = E::current_schema_version(event_type)
                    && link.to_type.is_none()
                    && from >= current
                {
                    return Err(UpcasterError::PastCurrent {
                        event_type: event_type.clone(),
                        to: link.to_version,
                        current,
                    });
                }
                match self.walk::<E>(event_type, from, |_| {}) {
                    End::Current(..) => {}
                    End::Missing {
                        event_type,
                        from,
                        current,
                    } => {
                        return Err(UpcasterError::MissingLink {
                            event_type: event_type.to_owned(),
                            from,
                            current,
                        });
                    }
                    End::Past {
                        event_type,
                        to,
                        current,
                    } => {
                        return Err(UpcasterError::PastCurrent {
                            event_type: event_type.to_owned(),
                            to,
                            current,
                        });
                    }
                    End::Unknown {
                        event_type: unknown,
                        ..
                    } => {
                        return Err(UpcasterError::UnknownTarget {
                            from_type: event_type.clone(),
                            event_type: unknown.to_owned(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Follows the chain from `(event_type, version)` until the version `E` reads, calling `step` for each link
    /// taken, and says where it ended. Each link moves forward, so a chain is at most as long as the registry.
    fn walk<'a, E: DomainEvent>(
        &'a self,
        event_type: &'a str,
        version: u32,
        mut step: impl FnMut(&Link),
    ) -> End<'a> {
        let (mut t, mut v) = (event_type, version);
        for _ in 0..=self.len() {
            let current = E::current_schema_version(t);
            if current == Some(v) {
                break;
            }
            match (self.link(t, v), current) {
                (Some(link), _) => {
                    step(link);
                    t = link.to_type.as_deref().unwrap_or(t);
                    v = link.to_version;
                }
                (None, Some(current)) if v < current => {
                    return End::Missing {
                        event_type: t,
                        from: v,
                        current,
                    };
                }
                (None, Some(current)) => {
                    return End::Past {
                        event_type: t,
                        to: v,
                        current,
                    };
                }
                (None, None) => {
                    return End::Unknown {
                        event_type: t,
                        version: v,
                    };
                }
            }
        }
        End::Current(t, v)
    }

    /// The number of registered steps.
    pub fn len(&self) -> usize {
        self.links.values().map(BTreeMap::len).sum()
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Whether some upcaster starts from `event_type` (at any version).
    pub fn knows(&self, event_type: &str) -> bool {
        self.links.contains_key(event_type)
    }

    fn link(&self, event_type: &str, from: u32) -> Option<&Link> {
        self.links.get(event_type)?.get(&from)
    }

    /// Upcasts a stored payload as far as it goes and decodes it.
    ///
    /// # Errors
    /// [`DecodeError::MissingUpcaster`] when the stored version is older than the code's and no chain leads up;
    /// the errors of [`DomainEvent::decode`] otherwise.
    pub fn decode_payload<E: DomainEvent>(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &serde_json::Value,
    ) -> Result<E, DecodeError> {
        let mut payload = Cow::Borrowed(payload);
        let upcast = |link: &Link| {
            let owned = std::mem::take(&mut payload).into_owned();
            payload = Cow::Owned((link.transform)(owned));
        };
        match self.walk::<E>(event_type, schema_version, upcast) {
            End::Missing {
                event_type,
                from,
                current,
            } => Err(DecodeError::MissingUpcaster {
                event_type: event_type.to_owned(),
                stored: from,
                current,
            }),
            // At the version the code reads, or past it or at a type it does not know: the decoder says which.
            End::Current(t, v)
            | End::Past {
                event_type: t,
                to: v,
                ..
            }
            | End::Unknown {
                event_type: t,
                version: v,
            } => E::decode(t, v, &payload),
        }
    }

    /// Decodes a stored payload given as JSON text: straight from the text when it is at the version the code
    /// reads (no upcaster to run), else parsed and upcast as [`decode_payload`](Self::decode_payload) does.
    ///
    /// # Errors
    /// As [`decode_payload`](Self::decode_payload), and [`DecodeError::InvalidJson`].
    pub fn decode_text<E: DomainEvent>(
        &self,
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
        self.decode_payload(event_type, schema_version, &value)
    }

    /// Upcasts and decodes a stored event as a load sees it.
    ///
    /// # Errors
    /// As [`decode_payload`](Self::decode_payload) and [`decode_text`](Self::decode_text).
    pub fn decode_view<E: DomainEvent>(&self, event: &EventView<'_>) -> Result<E, DecodeError> {
        match event.payload {
            PayloadView::Value(value) => {
                self.decode_payload(event.event_type, event.schema_version, value)
            }
            PayloadView::Text(text) => {
                self.decode_text(event.event_type, event.schema_version, text)
            }
        }
    }

    /// Upcasts and decodes a stored event.
    ///
    /// # Errors
    /// [`EventDecodeError`] naming the event (stream, version, position, type) and why.
    pub fn decode<E: DomainEvent>(&self, event: &RecordedEvent) -> Result<E, EventDecodeError> {
        self.decode_payload(&event.event_type, event.schema_version, &event.payload)
            .map_err(|source| EventDecodeError {
                stream: event.stream_id.clone(),
                version: event.version,
                position: event.position,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                source,
            })
    }
}

/// Where following a chain of upcasters ended.
enum End<'a> {
    /// At a type and version the code reads.
    Current(&'a str, u32),
    /// Below the version the code reads, with no link onwards.
    Missing {
        event_type: &'a str,
        from: u32,
        current: u32,
    },
    /// Beyond the version the code reads.
    Past {
        event_type: &'a str,
        to: u32,
        current: u32,
    },
    /// At a type the code does not know.
    Unknown { event_type: &'a str, version: u32 },
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (event_type, steps) in &self.links {
            for (from, link) in steps {
                let to_type = link.to_type.as_deref().unwrap_or(event_type);
                list.entry(&format_args!(
                    "{event_type} v{from} -> {to_type} v{}",
                    link.to_version
                ));
            }
        }
        list.finish()
    }
}
