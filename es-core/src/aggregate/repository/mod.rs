//! The repository: load aggregates from a store and run commands against them.

use std::sync::Arc;

use crate::aggregate::Aggregate;
use crate::aggregate::snapshot::writer::Snapshotter;
use crate::store::error::StreamIdError;
use crate::store::{EventStore, StreamId};

mod cache;
mod error;
mod execute;
mod execute_many;
mod idempotent;
mod load;
mod loaded;
mod snapshots;

use cache::AggregateCache;

/// How many streams' states a repository caches by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// How many snapshot writes may be in flight at once per repository.
const SNAPSHOT_WRITES: usize = 4;

pub use error::RepositoryError;
pub(crate) use execute::backoff;
pub use execute_many::ExecutedMany;
pub use loaded::{AsOf, Executed, Loaded};

/// Loads aggregates from an [`EventStore`] and executes commands against them with optimistic concurrency.
///
/// `execute` loads the aggregate (or takes the state its last command left, see [`Repository::with_cache`]),
/// decides, and appends with [`ExpectedVersion::Exact`](crate::ExpectedVersion::Exact) of the version it decided on. When another writer got
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
}
