//! A projection split into partitions by stream, leased across any number of worker processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use es_core::projection::ProjectionOptions;
use es_core::{Position, StoreError};
use sqlx::Connection;

use super::PgProjection;
use super::lease::{BeatError, Lease, Partitioned, rebuild_partitions};
use super::worker::{DEFAULT_LEASE, PgProjectionWorker};
use crate::PgEventStore;
use crate::error::backend;
use crate::rows::position;

/// [`partition_of`](es_core::store::partition_of) in SQL, for the stream id column `stream` and partition count `partitions`.
pub(crate) fn partition_sql(stream: &str, partitions: &str) -> String {
    format!("((('x' || substr(md5({stream}), 1, 8))::bit(32)::bigint) % {partitions})")
}

/// One partition as stored: who holds it, its checkpoint and its lag.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PartitionStatus {
    /// The partition, from 0.
    pub partition: u32,
    /// The holding worker's name (see [`PgPartitions::worker_name`]), while its lease runs.
    pub owner: Option<String>,
    /// How often it was claimed (each claim, and each rebuild, moves it on).
    pub epoch: i64,
    /// When its holder claimed it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// How long its lease has still to run (negative: expired, `None`: free).
    pub lease_left_secs: Option<f64>,
    /// Its checkpoint.
    pub checkpoint: Option<Position>,
    /// Events of its streams after its checkpoint that the feed shows: counted among the next
    /// [`count_cap`](crate::PgEventStoreBuilder::count_cap) events of the feed; past them, its share of those applied
    /// to the rest (an estimate).
    pub lag_events: u64,
}

/// A [`PgProjection`] split into `partitions` partitions by stream ([`partition_of`](es_core::store::partition_of)); each partition is run by
/// whichever worker process holds its lease, with its own checkpoint, exactly once like [`PgProjectionWorker`].
///
/// Every process runs the same code: `runner.with_all(partitions.workers())`. The workers of all processes
/// share the partitions out between them: each claims free or expired partitions while it holds fewer than its
/// fair share (the partitions over the live workers, rounded up), and hands the highest it holds over when it holds
/// more (a new process joined). A worker renews its leases with every checkpoint and, when idle, every third of the
/// lease; when it dies or goes silent, its partitions are claimed by the others once the lease (10 s by default)
/// has run out, within `lease + lease / 3 + standby_poll` (the others' count of live workers may be a third of a
/// lease old). A checkpoint moves only under the current lease (owner and epoch
/// checked in the same statement), so a worker that wakes up after losing its lease commits nothing more.
///
/// Each partition is a projection of its own to the runner, named `name#0`, `name#1`, ... (its status, dead
/// letters and control requests go by that name); [`status`](Self::status), [`wait_for`](Self::wait_for) and
/// [`rebuild`](Self::rebuild) work across all partitions, from any process. The partition count is fixed for the
/// life of the projection's name.
///
/// ```no_run
/// # use es_core::{DomainEvent, RecordedEvent};
/// # use es_core::projection::HandlerError;
/// # use es_postgres::PgProjection;
/// # #[derive(DomainEvent)] enum E { Happened }
/// # struct Balances;
/// # #[async_trait::async_trait] impl PgProjection for Balances {
/// #     type Event = E; fn name(&self) -> &str { "balances" }
/// #     async fn handle(&self, _: &mut sqlx::PgConnection, _: E, _: &RecordedEvent) -> Result<(), HandlerError> { Ok(()) }
/// # }
/// use std::time::Duration;
/// use es_core::ProjectionRunner;
/// use es_core::projection::ProjectionOptions;
/// use es_postgres::{PgEventStore, PgPartitions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgEventStore::connect("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").await?;
/// let balances = PgPartitions::new(&store, Balances, 8, ProjectionOptions::default())
///     .lease(Duration::from_secs(5));
/// let running = ProjectionRunner::new(store.clone()).with_all(balances.workers()).start();
/// for partition in balances.status().await? {
///     println!("{}: {:?} at {:?}, lag {}", partition.partition, partition.owner, partition.checkpoint, partition.lag_events);
/// }
/// # running.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgPartitions<P> {
    projection: Arc<P>,
    options: ProjectionOptions,
    standby_poll: Duration,
    shared: Arc<Partitioned>,
}

impl<P: PgProjection> PgPartitions<P> {
    /// `projection` in `partitions` partitions (at least 1) on `store`'s database.
    pub fn new(
        store: &PgEventStore,
        projection: P,
        partitions: u32,
        options: ProjectionOptions,
    ) -> Self {
        let shared = Partitioned::new(
            store,
            projection.name().to_owned(),
            partitions.max(1),
            DEFAULT_LEASE,
            format!("es-worker-{}", std::process::id()),
        );
        Self {
            projection: Arc::new(projection),
            options,
            standby_poll: Duration::from_secs(1),
            shared: Arc::new(shared),
        }
    }

    /// How long a worker's lease lasts without renewal (default 10 s, at least 1 s): the bound on taking over from
    /// a worker that died or went silent.
    pub fn lease(mut self, lease: Duration) -> Self {
        let name = self.shared.owner_name.clone();
        self.shared = Arc::new(
            self.shared
                .reconfigured(lease.max(Duration::from_secs(1)), name),
        );
        self
    }

    /// The name this process's workers show as the owner of their partitions (default `es-worker-<pid>`).
    pub fn worker_name(mut self, name: impl Into<String>) -> Self {
        self.shared = Arc::new(self.shared.reconfigured(self.shared.lease, name.into()));
        self
    }

    /// How often a worker without a partition tries to claim it (default 1 s).
    pub fn standby_poll(mut self, interval: Duration) -> Self {
        self.standby_poll = interval;
        self
    }

    /// Announces this process as a live worker now, before its runner starts, so that the first claims already
    /// count it (else a process that starts first claims every partition and hands them over as the others
    /// show up). Returns how many workers are live.
    ///
    /// # Errors
    /// [`StoreError::Backend`], or a partition count that differs from the stored one.
    pub async fn join(&self) -> Result<u32, StoreError> {
        self.shared.beat().await.map_err(|error| match error {
            BeatError::Db(error) => backend("join")(error),
            BeatError::Partitions(error) => StoreError::Backend {
                operation: "join",
                source: error.into(),
            },
        })
    }

    /// One worker per partition, for one runner; they claim partitions for this process as its fair share allows.
    pub fn workers(&self) -> Vec<PgProjectionWorker<Arc<P>>> {
        (0..self.shared.partitions)
            .map(|partition| {
                PgProjectionWorker::partition(
                    Arc::clone(&self.projection),
                    self.options.clone(),
                    Lease::new(Arc::clone(&self.shared), partition),
                )
                .standby_poll(self.standby_poll)
                .lease(self.shared.lease)
            })
            .collect()
    }

    /// Every partition as stored, with its lag (read from the database: any process can ask).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    pub async fn status(&self) -> Result<Vec<PartitionStatus>, StoreError> {
        type Row = (
            i32,
            Option<String>,
            i64,
            Option<DateTime<Utc>>,
            Option<f64>,
            i64,
            i64,
            i64,
            i64,
        );
        let store = &self.shared.store;
        let cap = store.inner.count_cap;
        let rows: Vec<Row> = crate::error::retrying(&store.inner.pool, || {
            sqlx::query_as(&self.shared.sql.status)
                .bind(&self.shared.projection)
                .bind(i64::try_from(cap).unwrap_or(i64::MAX))
                .fetch_all(&store.inner.pool)
        })
        .await
        .map_err(backend("partition_status"))?;
        // Each partition's lag is counted among the next `cap` events of the feed after its checkpoint; past them,
        // its share of those is applied to the rest, estimated from positions.
        let head = match rows
            .iter()
            .any(|row| u64::try_from(row.7).unwrap_or_default() >= cap)
        {
            true => es_core::EventStore::head(store).await?,
            false => None,
        };
        Ok(rows
            .into_iter()
            .map(
                |(partition, owner, epoch, claimed_at, left, tx, pos, scanned, matched)| {
                    let checkpoint = position(tx, pos);
                    let (scanned, matched) = (
                        u64::try_from(scanned).unwrap_or_default(),
                        u64::try_from(matched).unwrap_or_default(),
                    );
                    let lag_events = match head {
                        Some(head) if scanned >= cap => {
                            let behind =
                                head.prepare.saturating_sub(checkpoint.prepare).max(scanned);
                            u64::try_from(
                                u128::from(matched) * u128::from(behind)
                                    / u128::from(scanned.max(1)),
                            )
                            .unwrap_or(u64::MAX)
                        }
                        _ => matched,
                    };
                    PartitionStatus {
                        partition: u32::try_from(partition).unwrap_or_default(),
                        owner: owner.filter(|_| left.is_some_and(|l| l > 0.0)),
                        epoch,
                        claimed_at,
                        lease_left_secs: left,
                        checkpoint: Some(checkpoint).filter(|p| *p != Position::START),
                        lag_events,
                    }
                },
            )
            .collect())
    }

    /// Waits until every partition's checkpoint has passed `position` (an append's `last_position`), polling the
    /// database every 10 ms: read-your-writes across processes.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on a database error, and one naming the slowest partition and its checkpoint when
    /// `timeout` passes first.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), StoreError> {
        let started = Instant::now();
        loop {
            let status = self.status().await?;
            let behind = status
                .iter()
                .filter(|p| p.checkpoint.is_none_or(|c| c < position))
                .min_by_key(|p| p.checkpoint);
            let Some(behind) = behind else {
                if !status.is_empty() {
                    return Ok(());
                }
                return Err(not_started(&self.shared.projection));
            };
            if started.elapsed() >= timeout {
                return Err(StoreError::Backend {
                    operation: "wait_for",
                    source: format!(
                        "partition {} of `{}` did not reach position {position} within {timeout:?} (it is at {:?}, held by {:?})",
                        behind.partition, self.shared.projection, behind.checkpoint, behind.owner
                    )
                    .into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Empties the read model and sends every partition back to the start, in one transaction, from any process:
    /// the workers holding partitions are fenced off at their next checkpoint and start again from the start.
    ///
    /// # Errors
    /// [`StoreError::Backend`], or the projection's reset failing (nothing changes then).
    pub async fn rebuild(&self) -> Result<(), StoreError> {
        let failed = || backend("rebuild");
        let mut conn = self
            .shared
            .store
            .inner
            .pool
            .acquire()
            .await
            .map_err(failed())?;
        let mut tx = conn.begin().await.map_err(failed())?;
        self.projection
            .reset(&mut tx)
            .await
            .map_err(|e| StoreError::Backend {
                operation: "rebuild",
                source: e,
            })?;
        let reset = rebuild_partitions(&self.shared, &mut tx, None)
            .await
            .map_err(failed())?;
        tx.commit().await.map_err(failed())?;
        tracing::info!(projection = %self.shared.projection, partitions = reset, "rebuilding from the start");
        Ok(())
    }
}

fn not_started(projection: &str) -> StoreError {
    StoreError::Backend {
        operation: "wait_for",
        source: format!("projection `{projection}` has no partitions yet: no worker has started")
            .into(),
    }
}
