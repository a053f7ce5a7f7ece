//! The repository: load aggregates from a store and run commands against them.

use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::aggregate::event_id_for;
use crate::aggregate::snapshot::writer::{Snapshotter, StoreSnapshotter};
use crate::aggregate::snapshot::{SnapshotDue, SnapshotPolicy, SnapshotStore, Snapshotting};
use crate::event::{DecodeError, EncodeError};
use crate::store::error::{DuplicateReason, EventDecodeError, StoreError, StreamIdError};
use crate::store::fold::{EventView, FoldRead};
use crate::store::{
    AppendResult, EventStore, ExpectedVersion, Metadata, NewEvent, Position, StreamId, StreamRead,
    Version,
};
use crate::telemetry;
use uuid::Uuid;

mod cache;

use cache::AggregateCache;

/// How many streams' states a repository caches by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// How many snapshot writes may be in flight at once per repository.
const SNAPSHOT_WRITES: usize = 4;

/// An aggregate's state as loaded, with the stream version it reflects.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The version of the last event folded into it; [`Version::INITIAL`] for a new aggregate.
    pub version: Version,
    /// The version of the snapshot the load started from; `None` when it folded every event.
    pub snapshot: Option<Version>,
}

/// Which past state [`Repository::load_as_of`] loads.
///
/// ```
/// use es_core::Version;
/// use es_core::aggregate::AsOf;
///
/// let after_ten_events = AsOf::Version(Version::new(10));
/// let new_years_eve = AsOf::Time("2025-12-31T23:59:59Z".parse()?);
/// # let _ = (after_ten_events, new_years_eve);
/// # Ok::<(), chrono::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// The state after the event at this version (the whole stream when it is shorter).
    Version(Version),
    /// The state after every event recorded at or before this time (the store's `recorded_at`).
    Time(DateTime<Utc>),
}

/// What [`Repository::execute`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed<A: Aggregate> {
    /// The state after the new events.
    pub state: A,
    /// The stream version after the new events.
    pub version: Version,
    /// The events the command produced (empty when it decided that nothing changes).
    pub events: Vec<A::Event>,
    /// Where they were stored; `None` when there were none.
    pub append: Option<AppendResult>,
    /// How many times the command was decided: 1, plus one per lost race.
    pub attempts: u32,
    /// `true` when the command (by id, see [`Repository::execute_as`]) had been executed before: nothing was done.
    pub replayed: bool,
}

impl<A: Aggregate> Executed<A> {
    /// The global position of the last event the command stored: wait for a projection to pass it to read your own
    /// write (`running.wait_for(name, position, timeout)`). `None` when it stored nothing.
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone)] struct Counter;
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter";
    /// #     type Event = CounterEvent; type Command = bool; type Error = std::convert::Infallible;
    /// #     fn handle(&self, up: &bool) -> Result<Vec<CounterEvent>, Self::Error> {
    /// #         Ok(if *up { vec![CounterEvent::Incremented] } else { vec![] })
    /// #     }
    /// #     fn apply(self, _: &CounterEvent) -> Self { self }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let counters = Repository::<Counter, _>::new(InMemoryEventStore::new());
    /// let done = counters.execute("a", &true, Metadata::new()).await?;
    /// assert!(done.position().is_some());
    /// let nothing = counters.execute("a", &false, Metadata::new()).await?;
    /// assert_eq!(nothing.position(), None);
    /// # Ok(()) }
    /// ```
    pub fn position(&self) -> Option<Position> {
        self.append.map(|append| append.last_position)
    }
}

/// A command or load through the [`Repository`] failed.
///
/// Each variant says how a caller should handle it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The aggregate rejected the command. Nothing was written. Handle: report it to the user (a 4xx).
    #[error("command rejected by `{stream}`: {source}")]
    Rejected {
        /// The aggregate's stream.
        stream: StreamId,
        /// The aggregate's domain error.
        #[source]
        source: E,
    },
    /// Other writers kept winning the race for the stream; nothing was written. Handle: retry later or report a
    /// 409.
    #[error("gave up on `{stream}` after {attempts} attempts lost to concurrent writers")]
    TooManyConflicts {
        /// The aggregate's stream.
        stream: StreamId,
        /// How many times the command was decided.
        attempts: u32,
        /// The last conflict.
        #[source]
        source: StoreError,
    },
    /// The aggregate id does not make a valid stream id. Handle: a 4xx, the id is bad.
    #[error("invalid aggregate id: {0}")]
    InvalidId(#[from] StreamIdError),
    /// A stored event did not decode into the aggregate's event type (a missing upcaster, an event of another
    /// type in the stream). Handle: an operator problem, not a user one.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// A new event did not encode. Handle: a bug in the event type.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The store failed. Handle: retrying the same command is safe only if the command is idempotent in the domain;
    /// the outcome of the failed append is unknown.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads aggregates from an [`EventStore`] and executes commands against them with optimistic concurrency.
///
/// `execute` loads the aggregate (or takes the state its last command left, see [`Repository::with_cache`]),
/// decides, and appends with [`ExpectedVersion::Exact`] of the version it decided on. When another writer got
/// there first, it reloads and decides again on the fresh state (after a short random backoff from the second
/// retry on, so colliding writers spread out), up to [`Repository::with_max_attempts`] times (3 by default).
/// Commands of one repository (and its clones) on one aggregate take turns, so they never race each other.
///
/// ```
/// use es_core::{Aggregate, DomainEvent, Metadata, Repository};
/// use es_memory::InMemoryEventStore;
///
/// #[derive(Default, Debug, Clone)]
/// struct Counter { value: u64 }
///
/// #[derive(Debug, PartialEq, DomainEvent)]
/// #[event(aggregate = Counter)]
/// enum CounterEvent { Incremented { by: u64 } }
///
/// impl Aggregate for Counter {
///     const CATEGORY: &'static str = "counter";
///     type Event = CounterEvent;
///     type Command = u64;
///     type Error = std::convert::Infallible;
///     fn handle(&self, by: &u64) -> Result<Vec<CounterEvent>, Self::Error> {
///         Ok(vec![CounterEvent::Incremented { by: *by }])
///     }
///     fn apply(mut self, CounterEvent::Incremented { by }: &CounterEvent) -> Self {
///         self.value += by;
///         self
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let counters = Repository::<Counter, _>::new(InMemoryEventStore::new());
/// counters.execute("a", &2, Metadata::new()).await?;
/// let done = counters.execute("a", &3, Metadata::new()).await?;
/// assert_eq!(done.state.value, 5);
/// assert_eq!(done.version.get(), 2);
/// assert_eq!(counters.load("a").await?.state.value, 5);
/// # Ok(()) }
/// ```
pub struct Repository<A, S> {
    store: S,
    max_attempts: u32,
    page_size: usize,
    snapshots: Option<Arc<dyn Snapshotter<A>>>,
    cache: Arc<AggregateCache<A>>,
    snapshot_writes: Arc<tokio::sync::Semaphore>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            max_attempts: self.max_attempts,
            page_size: self.page_size,
            snapshots: self.snapshots.clone(),
            cache: Arc::clone(&self.cache),
            snapshot_writes: Arc::clone(&self.snapshot_writes),
        }
    }
}

impl<A, S: std::fmt::Debug> std::fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store)
            .field("max_attempts", &self.max_attempts)
            .field("page_size", &self.page_size)
            .field("snapshots", &self.snapshots.is_some())
            .field("cache", &self.cache)
            .finish()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository over `store`. `A::CATEGORY` is checked where this is compiled: a category that is empty or holds
    /// a `-` or a control character (stream ids are `{category}-{id}`, split at the first `-`) does not build, and
    /// neither does an event type whose [`CATEGORIES`](crate::DomainEvent::CATEGORIES) leave `A::CATEGORY` out
    /// (declare it with `#[event(aggregate = Order)]` on the event type). An event type with no category at all
    /// would be read by projections from every category, where a same-named event of another aggregate does not
    /// decode and halts them: that does not build either.
    ///
    /// ```compile_fail,E0080
    /// # use es_core::{Aggregate, DomainEvent, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(DomainEvent)] #[event(aggregate = Order)] enum OrderEvent { Placed }
    /// #[derive(Default, Clone)]
    /// struct Order;
    ///
    /// impl Aggregate for Order {
    ///     const CATEGORY: &'static str = "sales-order"; // a `-`: stream `sales-order-7` would be category `sales`
    ///     # type Event = OrderEvent; type Command = (); type Error = std::convert::Infallible;
    ///     # fn handle(&self, _: &()) -> Result<Vec<OrderEvent>, Self::Error> { Ok(vec![]) }
    ///     # fn apply(self, _: &OrderEvent) -> Self { self }
    /// }
    ///
    /// let orders = Repository::<Order, _>::new(InMemoryEventStore::new()); // error: does not build
    /// ```
    ///
    /// ```compile_fail,E0080
    /// # use es_core::{Aggregate, DomainEvent, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// #[derive(DomainEvent)] // no `#[event(aggregate = Order)]`: projections would read it from every category
    /// enum OrderEvent { Placed }
    ///
    /// #[derive(Default, Clone)]
    /// struct Order;
    ///
    /// impl Aggregate for Order {
    ///     const CATEGORY: &'static str = "order";
    ///     # type Event = OrderEvent; type Command = (); type Error = std::convert::Infallible;
    ///     # fn handle(&self, _: &()) -> Result<Vec<OrderEvent>, Self::Error> { Ok(vec![]) }
    ///     # fn apply(self, _: &OrderEvent) -> Self { self }
    /// }
    ///
    /// let orders = Repository::<Order, _>::new(InMemoryEventStore::new()); // error: does not build
    /// ```
    pub fn new(store: S) -> Self {
        const {
            assert!(
                crate::aggregate::valid_category(A::CATEGORY),
                "Aggregate::CATEGORY must be non-empty, without `-` or control characters"
            );
            assert!(
                crate::aggregate::lists_category(
                    <A::Event as crate::event::DomainEvent>::CATEGORIES,
                    A::CATEGORY,
                ),
                "the aggregate's event type must list Aggregate::CATEGORY: `#[event(aggregate = ..)]` on the event type"
            );
        }
        Self {
            store,
            max_attempts: 3,
            page_size: usize::MAX,
            snapshots: None,
            cache: Arc::new(AggregateCache::new(DEFAULT_CACHE_CAPACITY)),
            snapshot_writes: Arc::new(tokio::sync::Semaphore::new(SNAPSHOT_WRITES)),
        }
    }

    /// Caches the state of up to `streams` aggregates (default [`DEFAULT_CACHE_CAPACITY`]; 0 turns the cache
    /// off). A command on a cached aggregate decides on the cached state and appends with its version, with no
    /// read: one round trip. When another process wrote the stream meanwhile, the append is refused
    /// (optimistic concurrency), the entry is dropped, and the command is decided again on fresh state: a
    /// decision on stale state never commits. Loads read only the events after a cached state. The least
    /// recently used aggregates leave the cache first. With or without the cache, this repository's commands on
    /// one aggregate take turns instead of racing each other (clones of a repository share its cache and turns).
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone)] struct Counter(u64);
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter"; type Event = CounterEvent; type Command = ();
    /// #     type Error = std::convert::Infallible;
    /// #     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
    /// #     fn apply(self, _: &CounterEvent) -> Self { Counter(self.0 + 1) }
    /// # }
    /// let uncached = Repository::<Counter, _>::new(InMemoryEventStore::new()).with_cache(0);
    /// # let _ = uncached;
    /// ```
    pub fn with_cache(mut self, streams: usize) -> Self {
        self.cache = Arc::new(AggregateCache::new(streams));
        self
    }

    /// Decides at most `attempts` times (at least once) before giving up with
    /// [`RepositoryError::TooManyConflicts`].
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Reads streams in pages of `size` events when loading (at least 1; default: the whole stream in one read).
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stream of aggregate `id`: `{CATEGORY}-{id}`.
    ///
    /// # Errors
    /// [`StreamIdError`] when the id is empty or makes an invalid stream id.
    pub fn stream_id(id: &str) -> Result<StreamId, StreamIdError> {
        StreamId::for_aggregate(A::CATEGORY, id)
    }

    /// Loads aggregate `id` by folding its stream. A missing stream loads as the default state at version 0.
    ///
    /// # Errors
    /// [`RepositoryError::InvalidId`], [`RepositoryError::Decode`] naming the event that did not decode,
    /// [`RepositoryError::Store`].
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_id(id)?;
        self.load_stream(&stream).await
    }

    /// Loads aggregate `id` as it was at a version or a time ("what did the account look like on December 31?").
    /// A snapshot is used when it is not past the requested version; loads by time fold from the start.
    ///
    /// # Errors
    /// As [`Repository::load`].
    pub async fn load_as_of(
        &self,
        id: &str,
        as_of: AsOf,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_id(id)?;
        match as_of {
            AsOf::Version(version) => self.fold(&stream, Some(version), None).await,
            AsOf::Time(time) => self.fold(&stream, None, Some(time)).await,
        }
    }

    /// A fresh load; from this process's cached state when it has one (then only newer events are read, and
    /// `snapshot` is `None`: no snapshot was read).
    async fn load_stream(&self, stream: &StreamId) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        match self.cache.peek(stream) {
            Some(cached) => {
                let start = Loaded {
                    snapshot: None,
                    ..cached
                };
                self.fold_from(stream, start, None, None).await
            }
            None => self.fold(stream, None, None).await,
        }
    }

    /// Folds `stream` from its newest usable snapshot (none when loading by time) up to `until` (a version) or
    /// through events recorded at or before `until_time`.
    async fn fold(
        &self,
        stream: &StreamId,
        until: Option<Version>,
        until_time: Option<DateTime<Utc>>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let snapshot = match (&self.snapshots, until_time) {
            (Some(snapshots), None) => snapshots.load(stream, until).await,
            _ => None,
        };
        let start = match snapshot {
            Some((state, version)) => Loaded {
                state,
                version,
                snapshot: Some(version),
            },
            None => Loaded {
                state: A::default(),
                version: Version::INITIAL,
                snapshot: None,
            },
        };
        self.fold_from(stream, start, until, until_time).await
    }

    /// Folds the events of `stream` after `loaded` into it (see [`fold_pages`](Self::fold_pages)), recording the
    /// load's duration and events.
    async fn fold_from(
        &self,
        stream: &StreamId,
        loaded: Loaded<A>,
        until: Option<Version>,
        until_time: Option<DateTime<Utc>>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let started = Instant::now();
        let from = loaded.version;
        let span =
            tracing::debug_span!("load", %stream, from = from.get(), to = tracing::field::Empty);
        let folded = self
            .fold_pages(stream, loaded, until, until_time)
            .instrument(span.clone())
            .await?;
        span.record("to", folded.version.get());
        let events = folded.version.get().saturating_sub(from.get());
        telemetry::record_load(A::CATEGORY, events, started.elapsed());
        Ok(folded)
    }

    /// Folds the events of `stream` after `loaded` into it, in pages of the configured size (by default one
    /// read), decoding each payload straight from the store's buffers.
    async fn fold_pages(
        &self,
        stream: &StreamId,
        mut loaded: Loaded<A>,
        until: Option<Version>,
        until_time: Option<DateTime<Utc>>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        loop {
            let remaining = until.map_or(usize::MAX, |v| {
                usize::try_from(v.get().saturating_sub(loaded.version.get())).unwrap_or(usize::MAX)
            });
            let limit = self.page_size.min(remaining);
            if limit == 0 {
                return Ok(loaded);
            }
            let mut read = FoldRead::from(loaded.version.next()).limit(limit);
            if until_time.is_some() {
                read = read.with_recorded_at();
            }
            let (mut failed, mut past_time) = (None, false);
            let state = &mut loaded;
            let mut visit = |event: EventView<'_>| {
                if until_time.is_some_and(|time| event.recorded_at.is_some_and(|at| at > time)) {
                    past_time = true;
                    return ControlFlow::Break(());
                }
                match crate::store::fold::decode_view::<A::Event>(&event) {
                    Ok(decoded) => {
                        state.state = std::mem::take(&mut state.state).apply(&decoded);
                        state.version = event.version;
                        ControlFlow::Continue(())
                    }
                    Err(error) => {
                        failed = Some((
                            error,
                            event.version,
                            event.event_type.to_owned(),
                            event.schema_version,
                        ));
                        ControlFlow::Break(())
                    }
                }
            };
            let read_count = self.store.fold_stream(stream, read, &mut visit).await?;
            if let Some((source, version, event_type, schema_version)) = failed {
                return Err(self
                    .decode_error(stream, version, event_type, schema_version, source)
                    .await
                    .into());
            }
            if past_time || read_count < limit {
                return Ok(loaded);
            }
        }
    }

    /// Executes `command` on aggregate `id`: load, decide, append; on a lost race, again on fresh state.
    ///
    /// `metadata` is the command's: every event it produces carries its correlation id, causation id and
    /// key/values, and its `occurred_at` (the time of the call when unset).
    ///
    /// # Errors
    /// [`RepositoryError::Rejected`] when the aggregate refuses the command, [`RepositoryError::TooManyConflicts`]
    /// after losing every race, and the errors of [`Repository::load`].
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.execute_inner(id, None, command, metadata).await
    }

    /// Executes `command` as the command with id `command_id`, at most once: its events get ids derived from
    /// `command_id` ([`event_id_for`]), and when the first of them is already in the stream the command is not
    /// decided again — the result says `replayed` and nothing is written. Process managers send every command this
    /// way, so redelivering their inputs cannot duplicate effects.
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone)] struct Counter(u64);
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter"; type Event = CounterEvent; type Command = ();
    /// #     type Error = std::convert::Infallible;
    /// #     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
    /// #     fn apply(self, _: &CounterEvent) -> Self { Counter(self.0 + 1) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let counters = Repository::<Counter, _>::new(InMemoryEventStore::new());
    /// let command = uuid::Uuid::now_v7();
    /// assert!(!counters.execute_as("a", command, &(), Metadata::new()).await?.replayed);
    /// let again = counters.execute_as("a", command, &(), Metadata::new()).await?;
    /// assert!(again.replayed);
    /// assert_eq!(again.state.0, 1); // executed once
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Repository::execute`].
    pub async fn execute_as(
        &self,
        id: &str,
        command_id: Uuid,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.execute_inner(id, Some(command_id), command, metadata)
            .await
    }

    async fn execute_inner(
        &self,
        id: &str,
        command_id: Option<Uuid>,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "execute",
            category = A::CATEGORY,
            id,
            version = tracing::field::Empty,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self
            .decide_and_append(id, command_id, command, metadata)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(executed) if executed.replayed => "replayed",
            Ok(executed) if executed.attempts > 1 => "redecided",
            Ok(_) => "ok",
            Err(RepositoryError::Rejected { .. }) => "rejected",
            Err(RepositoryError::TooManyConflicts { .. }) => "conflict",
            Err(_) => "failed",
        };
        telemetry::record_execute(A::CATEGORY, outcome, started.elapsed());
        span.record("outcome", outcome);
        if let Ok(executed) = &result {
            span.record("version", executed.version.get());
            span.record("attempts", executed.attempts);
        }
        result
    }

    async fn decide_and_append(
        &self,
        id: &str,
        command_id: Option<Uuid>,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_id(id)?;
        let mut metadata = Metadata {
            occurred_at: metadata.occurred_at.or_else(|| Some(Utc::now())),
            ..metadata
        };
        telemetry::stamp(&mut metadata);
        // This process's commands on the stream take turns here; the entry is the state the last one left.
        let slot = self.cache.slot(&stream);
        let mut entry = slot.entry.lock().await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Taken out: if this command fails half-way (or is dropped), the next one loads afresh.
            let cached = entry.take();
            if attempts == 1 && self.cache.keeps_state() {
                telemetry::record_cache_lookup(A::CATEGORY, cached.is_some());
            }
            let current = match cached {
                Some(cached) => cached,
                None => self.fold(&stream, None, None).await?,
            };
            let events = match current.state.handle(command) {
                Ok(events) if !events.is_empty() => events,
                decision => {
                    // Deciding nothing or refusing can be the echo of this very command having run already.
                    if let Some(command) = command_id {
                        let first = event_id_for(command, 0);
                        if self.store.contains_event(&stream, first).await? {
                            return self.replayed(&stream, attempts, &mut entry).await;
                        }
                    }
                    let state = current.state.clone();
                    let version = current.version;
                    self.keep(&mut entry, current);
                    return match decision {
                        Ok(events) => Ok(Executed {
                            state,
                            version,
                            events,
                            append: None,
                            attempts,
                            replayed: false,
                        }),
                        Err(source) => Err(RepositoryError::Rejected {
                            stream: stream.clone(),
                            source,
                        }),
                    };
                }
            };
            let mut batch = events
                .iter()
                .map(|event| NewEvent::from_domain(event, metadata.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(command) = command_id {
                for (index, event) in batch.iter_mut().enumerate() {
                    event.event_id = event_id_for(command, index);
                }
            }
            let expected = ExpectedVersion::Exact(current.version);
            match self.store.append(&stream, expected, batch).await {
                Ok(append) if append.replayed && command_id.is_some() => {
                    return self.replayed(&stream, attempts, &mut entry).await;
                }
                Ok(append) => {
                    let state = events.iter().fold(current.state, A::apply);
                    let due = SnapshotDue {
                        version: append.last_version,
                        events_since_snapshot: append.last_version.get()
                            - current.snapshot.unwrap_or(Version::INITIAL).get(),
                        new_events: events.len(),
                    };
                    let snapshot = match self.snapshot_after(&stream, &state, due).await {
                        true => Some(append.last_version),
                        false => current.snapshot,
                    };
                    self.keep(
                        &mut entry,
                        Loaded {
                            state: state.clone(),
                            version: append.last_version,
                            snapshot,
                        },
                    );
                    return Ok(Executed {
                        state,
                        version: append.last_version,
                        events,
                        append: Some(append),
                        attempts,
                        replayed: append.replayed,
                    });
                }
                Err(conflict @ StoreError::Conflict { .. }) if attempts >= self.max_attempts => {
                    return Err(RepositoryError::TooManyConflicts {
                        stream,
                        attempts,
                        source: conflict,
                    });
                }
                Err(StoreError::Conflict { actual, .. }) => {
                    tracing::debug!(%stream, expected = %current.version, ?actual, attempts, "append lost a race; deciding again");
                    backoff(attempts).await;
                }
                // This command's events are in the stream already (it ran before, here or elsewhere).
                Err(StoreError::DuplicateEventId { reason, .. })
                    if command_id.is_some()
                        && !matches!(reason, DuplicateReason::StoredInOtherStream(_)) =>
                {
                    return self.replayed(&stream, attempts, &mut entry).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// The error for an event a load could not decode, with its position (looked up: loads do not read it).
    async fn decode_error(
        &self,
        stream: &StreamId,
        version: Version,
        event_type: String,
        schema_version: u32,
        source: DecodeError,
    ) -> EventDecodeError {
        let read = StreamRead::forward().from(version).limit(1);
        let position = match self.store.read_stream(stream, read).await {
            Ok(events) => events.first().map_or(Position::START, |e| e.position),
            Err(error) => {
                tracing::warn!(%stream, %version, %error, "cannot read the position of an event that does not decode");
                Position::START
            }
        };
        EventDecodeError {
            stream: stream.clone(),
            version,
            position,
            event_type,
            schema_version,
            source,
        }
    }

    /// Keeps `loaded` as the stream's cached state, if the cache keeps states.
    fn keep(&self, entry: &mut Option<Loaded<A>>, loaded: Loaded<A>) {
        if self.cache.keeps_state() {
            *entry = Some(loaded);
        }
    }

    /// The answer for a command that had run before: nothing written, the stream's current state.
    async fn replayed(
        &self,
        stream: &StreamId,
        attempts: u32,
        entry: &mut Option<Loaded<A>>,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let loaded = self.fold(stream, None, None).await?;
        let executed = Executed {
            state: loaded.state.clone(),
            version: loaded.version,
            events: Vec::new(),
            append: None,
            attempts,
            replayed: true,
        };
        self.keep(entry, loaded);
        Ok(executed)
    }

    /// Writes a snapshot of `state` in the background when the policy says one is due; `true` when one was
    /// started. At most [`SNAPSHOT_WRITES`] are in flight; past that a due snapshot is skipped with a warning
    /// (the next due one is written instead): a snapshot never delays or fails a command.
    async fn snapshot_after(&self, stream: &StreamId, state: &A, due: SnapshotDue) -> bool {
        let Some(snapshots) = &self.snapshots else {
            return false;
        };
        let Some(snapshot) = snapshots.prepare(stream, state, &due) else {
            return false;
        };
        let Ok(permit) = Arc::clone(&self.snapshot_writes).try_acquire_owned() else {
            tracing::warn!(%stream, version = %due.version, "snapshot skipped: {SNAPSHOT_WRITES} snapshot writes are still in flight");
            return false;
        };
        let snapshots = Arc::clone(snapshots);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    snapshots.save(snapshot).await;
                    drop(permit);
                });
            }
            Err(_) => snapshots.save(snapshot).await,
        }
        true
    }

    /// Waits until every snapshot write started so far has finished (tests, and a graceful shutdown).
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository, StreamId};
    /// # use es_core::aggregate::{SnapshotPolicy, SnapshotStore, Snapshotting};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)] struct Counter(u64);
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter"; type Event = CounterEvent; type Command = ();
    /// #     type Error = std::convert::Infallible;
    /// #     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
    /// #     fn apply(self, _: &CounterEvent) -> Self { Counter(self.0 + 1) }
    /// # }
    /// # impl Snapshotting for Counter {
    /// #     const SNAPSHOT_TYPE: &'static str = "counter"; const SNAPSHOT_VERSION: u32 = 1; type Snapshot = Counter;
    /// #     fn to_snapshot(&self) -> Counter { self.clone() }
    /// #     fn from_snapshot(s: Counter) -> Self { s }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = InMemoryEventStore::new();
    /// let counters = Repository::<Counter, _>::new(store.clone()).with_snapshots(store.clone(), SnapshotPolicy::every(1));
    /// counters.execute("a", &(), Metadata::new()).await?;
    /// counters.flush_snapshots().await;
    /// assert!(store.load_snapshot(&StreamId::new("counter-a")?, "counter").await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn flush_snapshots(&self) {
        let all = u32::try_from(SNAPSHOT_WRITES).unwrap_or(u32::MAX);
        // Closed never: the semaphore lives as long as the repository.
        let _ = self.snapshot_writes.acquire_many(all).await;
    }
}

impl<A: Snapshotting, S: EventStore> Repository<A, S> {
    /// Loads from snapshots in `snapshot_store` (the newest one whose schema version is
    /// [`A::SNAPSHOT_VERSION`](Snapshotting::SNAPSHOT_VERSION)), and writes one after `execute` when `policy` says
    /// so. Often the event store itself: `repository.with_snapshots(store.clone(), SnapshotPolicy::every(100))`.
    pub fn with_snapshots(
        mut self,
        snapshot_store: impl SnapshotStore + 'static,
        policy: SnapshotPolicy,
    ) -> Self {
        self.snapshots = Some(Arc::new(StoreSnapshotter {
            store: snapshot_store,
            policy,
            aggregate: PhantomData,
        }));
        self
    }
}

/// Waits before attempt `attempts + 1`: not at all after the first loss, then a random time up to 1 ms, 2 ms,
/// 4 ms, ... (at most 64 ms), so that writers who keep colliding spread out instead of starving one another.
async fn backoff(attempts: u32) {
    if attempts < 2 {
        return;
    }
    let ceiling_us = 1_000u64 << (attempts - 2).min(6);
    tokio::time::sleep(std::time::Duration::from_micros(fastrand::u64(
        0..=ceiling_us,
    )))
    .await;
}
