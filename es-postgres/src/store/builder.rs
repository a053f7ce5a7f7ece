//! [`PgEventStoreBuilder`]: schema, pools, timeouts and limits of a [`PgEventStore`].

use std::sync::Arc;
use std::time::Duration;

use es_core::store::EventLimits;
use sqlx::Connection;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use super::{Inner, PgEventStore};
use crate::error::PgSetupError;
use crate::group_commit::Committer;
use crate::live::Live;
use crate::schema::{SchemaName, Sql};

/// Configures a [`PgEventStore`].
///
/// ```
/// use std::time::Duration;
/// use es_postgres::PgEventStore;
///
/// let builder = PgEventStore::builder()
///     .schema("billing")
///     .max_connections(16)
///     .poll_interval(Duration::from_millis(100));
/// # let _ = builder;
/// ```
#[derive(Clone, Debug)]
pub struct PgEventStoreBuilder {
    schema: String,
    max_connections: u32,
    poll_interval: Duration,
    page_size: usize,
    count_cap: u64,
    max_appends_in_flight: usize,
    stream_lock_timeout: Duration,
    connect_timeout: Duration,
    limits: EventLimits,
    feed_url: Option<String>,
    feed_pool: Option<PgPool>,
}

/// How long connecting may take by default: see [`PgEventStoreBuilder::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most events an operator's count reads by default ([`PgEventStoreBuilder::count_cap`]).
pub const DEFAULT_COUNT_CAP: u64 = 100_000;

/// How long an append waits by default for a stream another transaction holds
/// ([`PgEventStoreBuilder::stream_lock_timeout`]).
pub const DEFAULT_STREAM_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for PgEventStoreBuilder {
    fn default() -> Self {
        Self {
            schema: "es".to_owned(),
            max_connections: 10,
            poll_interval: Duration::from_millis(250),
            page_size: 1_000,
            count_cap: DEFAULT_COUNT_CAP,
            max_appends_in_flight: 1,
            stream_lock_timeout: DEFAULT_STREAM_LOCK_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            limits: EventLimits::default(),
            feed_url: None,
            feed_pool: None,
        }
    }
}

impl PgEventStoreBuilder {
    /// The schema for the store's tables (default `es`); see [`SchemaName`] for the rules.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The pool size when the builder connects (default 10).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How often an idle subscription polls when no wake-up arrives (default 250 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The most events an operator's count reads (default [`DEFAULT_COUNT_CAP`], at least 1): a projection's lag
    /// (`count_after`, `status`, the gauges sampled every 5 s, the operator overview), the events held back behind an
    /// open transaction, a partition's lag. Up to it a count is exact; past it, it is estimated from positions (the
    /// difference of global positions, which also counts the identity values of appends that rolled back), so an
    /// operator's read costs the same at 10 million events as at 10 thousand.
    ///
    /// ```no_run
    /// # #[allow(dead_code)] async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use es_core::{EventStore, Position};
    /// use es_postgres::PgEventStore;
    ///
    /// let store = PgEventStore::builder()
    ///     .count_cap(10_000)
    ///     .connect("postgres://app@127.0.0.1/app")
    ///     .await?;
    /// // Exact up to 10,000 events behind; past that, estimated from the head's position.
    /// let lag = store.count_after(Position::START).await?;
    /// # let _ = lag; Ok(()) }
    /// ```
    pub fn count_cap(mut self, cap: u64) -> Self {
        self.count_cap = cap.max(1);
        self
    }

    /// Events read per query by subscriptions (default 1,000).
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// How many append transactions may be on their way at once (default 1, at least 1): each runs on a
    /// connection of the store's own, and appends that arrive while all are busy wait and then go together, in one
    /// transaction (group commit). More lets large appends overlap; fewer makes larger groups (measured with 8
    /// tasks on 2 cores: 1 in flight gave the most appends per second).
    pub fn max_appends_in_flight(mut self, max: usize) -> Self {
        self.max_appends_in_flight = max.max(1);
        self
    }

    /// How long an append waits for its stream while another transaction holds it (default 5 s): a writer stopped
    /// half way through its append (a paused process, a client that left its transaction open). Past it the append
    /// fails with [`StoreError::StreamLocked`](es_core::StoreError::StreamLocked), retryable, and nothing is
    /// written. Appends to other streams never wait for a held stream.
    ///
    /// ```no_run
    /// # #[allow(dead_code)] async fn f() -> Result<(), es_postgres::PgSetupError> {
    /// use std::time::Duration;
    /// use es_postgres::PgEventStore;
    ///
    /// let store = PgEventStore::builder()
    ///     .stream_lock_timeout(Duration::from_secs(2))
    ///     .connect("postgres://app@127.0.0.1/app")
    ///     .await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn stream_lock_timeout(mut self, timeout: Duration) -> Self {
        self.stream_lock_timeout = timeout;
        self
    }

    /// What an event may be (the same defaults as every store: 16 MiB of payload and metadata, type names up
    /// to 255 bytes without control characters); see [`EventLimits`].
    pub fn limits(mut self, limits: EventLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long opening a connection, or waiting for a pooled one, may take (default 5 s): [`connect`](Self::connect)
    /// fails after it with [`PgSetupError::Connect`] naming the host and port, and later operations with a
    /// backend error. Standby projection workers and appends open their own connections within it too.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Reads the global feed (`read_all`, subscriptions, projection catch-up) from a streaming replica at `url`
    /// instead, when [`connect`](Self::connect) builds the store; appends, checkpoints, read models and everything
    /// else stay on the primary. The feed's no-skip rule holds on a hot standby too (its snapshots count every
    /// transaction still open on the primary as running), and a replica that lags only delays the feed: wake-ups
    /// still come from the primary, and a read that finds nothing new waits for the next one or the poll interval.
    ///
    /// ```no_run
    /// # #[allow(dead_code)] async fn f() -> Result<(), es_postgres::PgSetupError> {
    /// use es_postgres::PgEventStore;
    ///
    /// let store = PgEventStore::builder()
    ///     .feed_from("postgres://app@replica.internal:5432/app")
    ///     .connect("postgres://app@primary.internal:5432/app")
    ///     .await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn feed_from(mut self, url: impl Into<String>) -> Self {
        self.feed_url = Some(url.into());
        self
    }

    /// The pool to read the global feed from, for [`build`](Self::build) (see [`feed_from`](Self::feed_from)).
    pub fn feed_pool(mut self, pool: PgPool) -> Self {
        self.feed_pool = Some(pool);
        self
    }

    /// Connects a new pool to `url` and builds the store. Call [`PgEventStore::migrate`] once before use.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use es_postgres::{PgEventStore, PgSetupError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let nobody = PgEventStore::builder()
    ///     .connect_timeout(Duration::from_secs(1))
    ///     .connect("postgres://app:secret@127.0.0.1:1/app")
    ///     .await;
    /// // "cannot connect to PostgreSQL at 127.0.0.1:1: ..." (never the password)
    /// assert!(matches!(nobody, Err(PgSetupError::Connect { port: 1, .. })));
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`PgSetupError::InvalidSchemaName`], [`PgSetupError::InvalidUrl`], [`PgSetupError::Connect`].
    pub async fn connect(mut self, url: &str) -> Result<PgEventStore, PgSetupError> {
        SchemaName::new(&self.schema)?;
        let pool = self.pool(url).await?;
        if let Some(feed) = self.feed_url.take() {
            self.feed_pool = Some(self.pool(&feed).await?);
        }
        self.build(pool)
    }

    pub(super) async fn pool(&self, url: &str) -> Result<PgPool, PgSetupError> {
        let options: PgConnectOptions = url.parse().map_err(PgSetupError::InvalidUrl)?;
        let (host, port) = (options.get_host().to_owned(), options.get_port());
        let failed = |source| PgSetupError::Connect {
            host: host.clone(),
            port,
            source,
        };
        // One connection first, on its own: the pool retries a refused connection until its acquire timeout and
        // then says only "pool timed out"; this answers at once with what went wrong ("connection refused").
        let first =
            tokio::time::timeout(self.connect_timeout, PgConnection::connect_with(&options))
                .await
                .map_err(|_| {
                    failed(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no answer within the connect timeout of {:?}",
                            self.connect_timeout
                        ),
                    )))
                })?
                .map_err(&failed)?;
        // Connections are checked when they fail, not pinged before every use (a round trip each).
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .test_before_acquire(false)
            .acquire_timeout(self.connect_timeout)
            .connect_lazy_with(options);
        let _ = first.close().await;
        Ok(pool)
    }

    /// Builds the store on an existing pool. Must be called inside a Tokio runtime (it starts the notifier task).
    /// Reads run on the pool; appends on connections of the store's own, opened with the pool's connect options.
    /// Build the pool with `test_before_acquire(false)`, as [`connect`](Self::connect) does: sqlx's default pings
    /// every connection before handing it out, a round trip per query.
    ///
    /// # Errors
    /// [`PgSetupError::InvalidSchemaName`], [`PgSetupError::NoRuntime`].
    pub fn build(self, pool: PgPool) -> Result<PgEventStore, PgSetupError> {
        let schema = SchemaName::new(&self.schema)?;
        let sql = Sql::new(&schema);
        let live = Live::start(pool.clone(), sql.events.notify_channel.clone())
            .ok_or(PgSetupError::NoRuntime)?;
        let committer = Arc::new(Committer::new(
            sql.append.clone(),
            (*pool.connect_options()).clone(),
            pool.options().get_acquire_timeout(),
            self.max_appends_in_flight,
            self.stream_lock_timeout,
        ));
        Ok(PgEventStore {
            inner: Arc::new(Inner {
                committer,
                feed: self.feed_pool.unwrap_or_else(|| pool.clone()),
                pool,
                schema,
                sql,
                live,
                poll_interval: self.poll_interval,
                page_size: self.page_size,
                count_cap: self.count_cap,
                connect_timeout: self.connect_timeout,
                limits: self.limits,
            }),
        })
    }
}
