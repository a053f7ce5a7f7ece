//! The pre-deploy schema check: does every kind of stored event still decode into today's types?

use std::fmt;

use crate::event::DomainEvent;
use crate::evolution::EventCatalog;
use crate::store::error::StoreError;
use crate::store::{Position, RecordedEvent, StreamId};

type Decoder = Box<dyn Fn(&RecordedEvent) -> Option<Result<(), String>> + Send + Sync>;

/// Checks, before a deploy, that every (event type, schema version) stored decodes into the event types of the
/// code about to run, through its upcasters. Reads the distinct pairs, then a sample of each pair, never the whole
/// store event by event.
///
/// Register each event type of the application (one per aggregate; its upcasters come with it); a stored type that
/// no registered event type reads is reported, unless ignored.
///
/// ```
/// use es_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, StreamId};
/// use es_core::evolution::{SchemaCheck, Upcaster};
/// use es_memory::InMemoryEventStore;
///
/// // Today's code reads `SwitchedOn` v2 and claims none was stored before; v1 events are in the store.
/// #[derive(DomainEvent)]
/// enum Forgetful { #[event(version = 2, since = 2)] SwitchedOn { lux: u32 } }
///
/// #[derive(DomainEvent)]
/// #[event(upcasters = &[Upcaster::new("SwitchedOn", 1, |_| serde_json::json!({ "lux": 100 }))])]
/// enum Light { #[event(version = 2)] SwitchedOn { lux: u32 } }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("light-1")?;
/// store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new("SwitchedOn", 1, serde_json::json!({}))]).await?;
///
/// // Without an upcaster from version 1, the check fails and says why.
/// let report = SchemaCheck::new().expect::<Forgetful>().run(&store).await?;
/// assert!(!report.is_ok());
/// assert_eq!(report.problems[0].event_type, "SwitchedOn");
///
/// let report = SchemaCheck::new().expect::<Light>().run(&store).await?;
/// assert!(report.is_ok(), "{report}");
/// # Ok(()) }
/// ```
pub struct SchemaCheck {
    decoders: Vec<(&'static str, Decoder)>,
    ignored: Vec<String>,
    sample_size: usize,
}

/// One stored (type, version) pair that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaProblem {
    /// The stored type.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// How many stored events have this pair.
    pub count: u64,
    /// How many events were sampled, and how many of them failed.
    pub sampled: usize,
    /// How many of the sampled events failed.
    pub failed: usize,
    /// Where one failing event is.
    pub example_stream: StreamId,
    /// Its position.
    pub example_position: Position,
    /// Why it failed.
    pub error: String,
}

/// The outcome of a [`SchemaCheck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// Pairs checked.
    pub pairs: usize,
    /// Events sampled over all pairs.
    pub sampled: usize,
    /// The pairs that fail.
    pub problems: Vec<SchemaProblem>,
}

impl SchemaReport {
    /// Whether every pair decodes.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for SchemaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} stored event kinds, {} events sampled, {} failing",
            self.pairs,
            self.sampled,
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(
                f,
                "  {} v{}: {} of {} sampled fail ({} stored); e.g. {} at position {}: {}",
                p.event_type,
                p.schema_version,
                p.failed,
                p.sampled,
                p.count,
                p.example_stream,
                p.example_position,
                p.error
            )?;
        }
        Ok(())
    }
}

impl Default for SchemaCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SchemaCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaCheck")
            .field(
                "event_types",
                &self
                    .decoders
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("ignored", &self.ignored)
            .field("sample_size", &self.sample_size)
            .finish()
    }
}

impl SchemaCheck {
    /// A check with nothing registered, sampling 100 events per pair.
    pub fn new() -> Self {
        Self {
            decoders: Vec::new(),
            ignored: Vec::new(),
            sample_size: 100,
        }
    }

    /// Stored events whose type `E` reads (directly or through its [`UPCASTERS`](DomainEvent::UPCASTERS)) must
    /// decode into `E`.
    pub fn expect<E: DomainEvent>(mut self) -> Self {
        let decoder = move |event: &RecordedEvent| {
            crate::event::reads::<E>(&event.event_type).then(|| {
                event
                    .decode::<E>()
                    .map(drop)
                    .map_err(|e| e.source.to_string())
            })
        };
        self.decoders
            .push((std::any::type_name::<E>(), Box::new(decoder)));
        self
    }

    /// Does not report a stored type that no registered event type knows (a retired event, another service's).
    pub fn ignore_type(mut self, event_type: impl Into<String>) -> Self {
        self.ignored.push(event_type.into());
        self
    }

    /// Events sampled per (type, version) pair (default 100; at least 1).
    pub fn sample_size(mut self, size: usize) -> Self {
        self.sample_size = size.max(1);
        self
    }

    /// Runs the check against `catalog`.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read; decoding failures are the report's problems, not errors.
    pub async fn run(&self, catalog: &impl EventCatalog) -> Result<SchemaReport, StoreError> {
        let mut report = SchemaReport::default();
        for kind in catalog.stored_event_types().await? {
            if self.ignored.contains(&kind.event_type) {
                continue;
            }
            report.pairs += 1;
            let sample = catalog
                .sample_events(&kind.event_type, kind.schema_version, self.sample_size)
                .await?;
            report.sampled += sample.len();
            let mut failed = 0;
            let mut example = None;
            for event in &sample {
                let outcome = self.decoders.iter().find_map(|(_, decode)| decode(event));
                let error = match outcome {
                    Some(Ok(())) => continue,
                    Some(Err(error)) => error,
                    None => "no registered event type knows this type".to_owned(),
                };
                failed += 1;
                example.get_or_insert((event.stream_id.clone(), event.position, error));
            }
            if let Some((example_stream, example_position, error)) = example {
                report.problems.push(SchemaProblem {
                    event_type: kind.event_type,
                    schema_version: kind.schema_version,
                    count: kind.count,
                    sampled: sample.len(),
                    failed,
                    example_stream,
                    example_position,
                    error,
                });
            }
        }
        Ok(report)
    }
}
