//! Partition leases: one row per partition in `projection_partitions` holds its owner, epoch, expiry and checkpoint.
//! A worker claims a free or expired partition by bumping its epoch, renews it with every checkpoint it moves and
//! with heartbeats, and every checkpoint move is fenced by owner and epoch in the same statement, so a worker that
//! lost its lease (paused, partitioned, slow) can never commit after the next owner took over. Each worker process
//! renews a row in `projection_workers` too; the live ones split the partitions between them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use es_core::Position;
use es_core::projection::Holder;
use sqlx::PgConnection;
use uuid::Uuid;

use super::worker::{Failure, connect};
use crate::PgEventStore;
use crate::rows::{bind_half, position};

/// What the partitions of one projection in one process share: who they are, how many live workers there are, and
/// which partitions this process holds.
#[derive(Debug)]
pub(crate) struct Partitioned {
    pub(crate) store: PgEventStore,
    /// The projection's name (its partitions are `name#0`, `name#1`, ...).
    pub(crate) projection: String,
    pub(crate) partitions: u32,
    pub(crate) lease: Duration,
    owner: Uuid,
    pub(crate) owner_name: String,
    pub(crate) sql: LeaseSql,
    /// Never held across a round trip: every partition's batches consult it.
    membership: parking_lot::Mutex<Membership>,
}

#[derive(Debug, Default)]
struct Membership {
    /// Live worker processes, this one included, as of `beaten`.
    live: u32,
    beaten: Option<Instant>,
    /// The partition rows exist and have this projection's partition count.
    checked: bool,
    /// The partitions this process holds, or is claiming.
    owned: BTreeSet<u32>,
}

impl Partitioned {
    pub(crate) fn new(
        store: &PgEventStore,
        projection: String,
        partitions: u32,
        lease: Duration,
        owner_name: String,
    ) -> Self {
        Self {
            sql: LeaseSql::new(&store.schema().quoted()),
            store: store.clone(),
            projection,
            partitions,
            lease,
            owner: Uuid::new_v4(),
            owner_name,
            membership: parking_lot::Mutex::new(Membership::default()),
        }
    }

    /// The same partitions with another lease and owner name (before any worker runs).
    pub(crate) fn reconfigured(&self, lease: Duration, owner_name: String) -> Self {
        Self::new(
            &self.store,
            self.projection.clone(),
            self.partitions,
            lease,
            owner_name,
        )
    }

    fn interval(&self) -> String {
        format!("{} milliseconds", self.lease.as_millis())
    }

    /// Renews this process's membership when a third of the lease has passed since the last time (checking the
    /// partition rows the first time); returns how many workers are live. Partitions may beat at the same time:
    /// the statements are idempotent.
    pub(crate) async fn beat(&self) -> Result<u32, BeatError> {
        let (live, checked) = {
            let membership = self.membership.lock();
            match membership.beaten {
                Some(at) if at.elapsed() < self.lease / 3 => return Ok(membership.live),
                _ => (membership.live, membership.checked),
            }
        };
        let pool = &self.store.inner.pool;
        if !checked {
            let (min, max, count): (Option<i32>, Option<i32>, i64) =
                sqlx::query_as(&self.sql.create)
                    .bind(&self.projection)
                    .bind(partitions_i32(self.partitions))
                    .fetch_one(pool)
                    .await?;
            let n = i64::from(self.partitions);
            if (min.map(i64::from), max.map(i64::from), count) != (Some(n), Some(n), n) {
                return Err(BeatError::Partitions(format!(
                    "projection `{}` is stored with {} partitions, this worker was built with {}: \
                     the partition count cannot change under a running projection (rebuild it under a new name)",
                    self.projection,
                    max.unwrap_or_default(),
                    self.partitions
                )));
            }
        }
        let others: i64 = sqlx::query_scalar(&self.sql.beat)
            .bind(&self.projection)
            .bind(self.owner)
            .bind(&self.owner_name)
            .bind(self.interval())
            .fetch_one(pool)
            .await?;
        let live_now = u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1);
        let mut membership = self.membership.lock();
        membership.live = live_now;
        membership.beaten = Some(Instant::now());
        membership.checked = true;
        if live != live_now {
            tracing::info!(projection = %self.projection, workers = live_now, "live workers changed");
        }
        Ok(live_now)
    }

    /// This process's fair share: the partitions split evenly over the live workers, rounded up.
    fn fair_share(&self, live: u32) -> usize {
        self.partitions.div_ceil(live.max(1)) as usize
    }
}

/// Why a membership beat failed.
pub(crate) enum BeatError {
    Db(sqlx::Error),
    Partitions(String),
}

impl From<sqlx::Error> for BeatError {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(error)
    }
}

fn partitions_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What trying to claim a partition found.
pub(crate) enum Claimed {
    /// This worker holds it now, on this connection.
    Won(PgConnection),
    /// Another worker holds it (who, when it is known), or this process has its fair share already.
    Busy(Option<Holder>),
}

/// One partition's lease, as its worker sees it.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) shared: Arc<Partitioned>,
    pub(crate) partition: u32,
    /// The epoch this worker claimed it with; `None` while not holding it.
    epoch: Option<i64>,
}

impl Lease {
    pub(crate) fn new(shared: Arc<Partitioned>, partition: u32) -> Self {
        Self {
            shared,
            partition,
            epoch: None,
        }
    }

    fn partition_i32(&self) -> i32 {
        partitions_i32(self.partition)
    }

    /// Claims the partition when it is free or expired and this process is below its fair share; then opens the
    /// dedicated connection with the lease's idle timeouts.
    pub(crate) async fn claim(&mut self) -> Result<Claimed, BeatError> {
        let shared = Arc::clone(&self.shared);
        let live = shared.beat().await?;
        self.epoch = None;
        // Reserve the slot first, so partitions claiming at the same time cannot pass the share together.
        let reserved = {
            let mut membership = shared.membership.lock();
            membership.owned.remove(&self.partition);
            membership.owned.len() < shared.fair_share(live)
                && membership.owned.insert(self.partition)
        };
        if !reserved {
            return Ok(Claimed::Busy(self.holder().await?));
        }
        match self.take(&shared).await {
            Ok(Some((epoch, conn))) => {
                self.epoch = Some(epoch);
                tracing::info!(projection = %shared.projection, partition = self.partition, epoch, "claimed the partition");
                Ok(Claimed::Won(conn))
            }
            Ok(None) => {
                self.forget();
                Ok(Claimed::Busy(self.holder().await?))
            }
            Err(error) => {
                self.forget();
                Err(error.into())
            }
        }
    }

    /// Takes the lease when it is free or expired, and opens the partition's connection.
    async fn take(&self, shared: &Partitioned) -> Result<Option<(i64, PgConnection)>, sqlx::Error> {
        let epoch: Option<i64> = sqlx::query_scalar(&shared.sql.claim)
            .bind(&shared.projection)
            .bind(self.partition_i32())
            .bind(shared.owner)
            .bind(&shared.owner_name)
            .bind(shared.interval())
            .fetch_optional(&shared.store.inner.pool)
            .await?;
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let mut conn = connect(&shared.store).await?;
        sqlx::query(TIMEOUTS)
            .bind(format!("{}ms", shared.lease.as_millis()))
            .execute(&mut conn)
            .await?;
        Ok(Some((epoch, conn)))
    }

    /// The partition's holder as stored.
    async fn holder(&self) -> Result<Option<Holder>, sqlx::Error> {
        let row: Option<(Option<String>, Option<DateTime<Utc>>)> =
            sqlx::query_as(&self.shared.sql.holder)
                .bind(&self.shared.projection)
                .bind(self.partition_i32())
                .fetch_optional(&self.shared.store.inner.pool)
                .await?;
        Ok(row.and_then(|(name, since)| {
            name.map(|name| Holder {
                pid: None,
                application_name: Some(name),
                client_addr: None,
                since,
            })
        }))
    }

    /// Forgets the lease after a failure (it expires by itself).
    pub(crate) fn forget(&mut self) {
        self.epoch = None;
        self.shared.membership.lock().owned.remove(&self.partition);
    }

    fn epoch(&self) -> Result<i64, Failure> {
        self.epoch.ok_or_else(|| {
            Failure::Lost(format!(
                "partition {} is not held by this worker",
                self.partition
            ))
        })
    }

    /// Extends the lease on `conn`; `Lost` when another worker took it.
    pub(crate) async fn renew(&self, conn: &mut PgConnection) -> Result<(), Failure> {
        let shared = &self.shared;
        let renewed = sqlx::query(&shared.sql.renew)
            .bind(&shared.projection)
            .bind(self.partition_i32())
            .bind(shared.owner)
            .bind(self.epoch()?)
            .bind(shared.interval())
            .execute(conn)
            .await?;
        match renewed.rows_affected() {
            1 => Ok(()),
            _ => Err(self.taken_over()),
        }
    }

    /// Whether this process holds more than its fair share and this partition is the one to hand over first (the
    /// highest it holds).
    pub(crate) async fn should_hand_over(&self) -> Result<bool, BeatError> {
        let live = self.shared.beat().await?;
        let membership = self.shared.membership.lock();
        Ok(membership.owned.len() > self.shared.fair_share(live)
            && membership.owned.last() == Some(&self.partition))
    }

    /// Gives the lease up (on shutdown, or to balance): another worker can claim it at once.
    pub(crate) async fn release(&mut self) -> Result<(), sqlx::Error> {
        let Some(epoch) = self.epoch else {
            return Ok(());
        };
        self.forget();
        let shared = &self.shared;
        sqlx::query(&shared.sql.release)
            .bind(&shared.projection)
            .bind(self.partition_i32())
            .bind(shared.owner)
            .bind(epoch)
            .execute(&shared.store.inner.pool)
            .await?;
        tracing::info!(projection = %shared.projection, partition = self.partition, "released the partition");
        Ok(())
    }

    /// The partition's stored checkpoint.
    pub(crate) async fn checkpoint(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Option<Position>, sqlx::Error> {
        let row: Option<(i64, i64)> = sqlx::query_as(&self.shared.sql.checkpoint)
            .bind(&self.shared.projection)
            .bind(self.partition_i32())
            .fetch_optional(conn)
            .await?;
        Ok(row
            .map(|(tx, pos)| position(tx, pos))
            .filter(|p| *p != Position::START))
    }

    /// Moves the checkpoint from `from` to `to` inside `tx`, renewing the lease: fenced by owner and epoch, so
    /// `Lost` when another worker took the partition over, `Fenced` when the checkpoint was elsewhere.
    pub(crate) async fn move_checkpoint(
        &self,
        tx: &mut PgConnection,
        from: Option<Position>,
        to: Position,
    ) -> Result<(), Failure> {
        let shared = &self.shared;
        let from = from.unwrap_or(Position::START);
        let moved = sqlx::query(&shared.sql.move_checkpoint)
            .bind(&shared.projection)
            .bind(self.partition_i32())
            .bind(shared.owner)
            .bind(self.epoch()?)
            .bind(shared.interval())
            .bind(bind_half(to.commit))
            .bind(bind_half(to.prepare))
            .bind(bind_half(from.commit))
            .bind(bind_half(from.prepare))
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 1 {
            return Ok(());
        }
        let row: Option<(Option<Uuid>, i64, i64, i64)> = sqlx::query_as(&shared.sql.fence)
            .bind(&shared.projection)
            .bind(self.partition_i32())
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some((owner, epoch, tx_id, pos))
                if owner == Some(shared.owner) && Some(epoch) == self.epoch =>
            {
                Err(Failure::Fenced(Some(position(tx_id, pos))))
            }
            _ => Err(self.taken_over()),
        }
    }

    fn taken_over(&self) -> Failure {
        Failure::Lost(format!(
            "the lease on partition {} of `{}` was taken over or expired (held with epoch {:?})",
            self.partition, self.shared.projection, self.epoch
        ))
    }

    /// A rebuild from this partition's worker, inside `tx` (after the read model's reset): every partition's
    /// checkpoint goes back to the start and its epoch moves on, so their workers stop and start again from the
    /// start; this partition keeps its lease under the new epoch.
    pub(crate) async fn rebuild(&mut self, tx: &mut PgConnection) -> Result<(), Failure> {
        let shared = &self.shared;
        let epoch = self.epoch()?;
        let held: Option<i32> = sqlx::query_scalar(&shared.sql.lock_held)
            .bind(&shared.projection)
            .bind(self.partition_i32())
            .bind(shared.owner)
            .bind(epoch)
            .fetch_optional(&mut *tx)
            .await?;
        if held.is_none() {
            return Err(self.taken_over());
        }
        rebuild_partitions(shared, tx, Some(self.partition_i32())).await?;
        self.epoch = Some(epoch + 1);
        Ok(())
    }
}

/// Resets every partition's checkpoint and moves every epoch on, in `tx`; only `keep`'s owner keeps its lease.
pub(crate) async fn rebuild_partitions(
    shared: &Partitioned,
    tx: &mut PgConnection,
    keep: Option<i32>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(&shared.sql.rebuild)
        .bind(&shared.projection)
        .bind(keep.unwrap_or(-1))
        .execute(tx)
        .await?;
    Ok(done.rows_affected())
}

/// Sets the lease's idle timeouts on a partition's connection (see [`PgProjectionWorker`](super::PgProjectionWorker)).
const TIMEOUTS: &str = "SELECT set_config('idle_in_transaction_session_timeout', $1, false), \
     CASE WHEN current_setting('server_version_num')::int >= 140000 \
          THEN set_config('idle_session_timeout', $1, false) END";

/// The lease statements, in the store's schema.
#[derive(Debug)]
pub(crate) struct LeaseSql {
    create: String,
    beat: String,
    claim: String,
    holder: String,
    renew: String,
    release: String,
    checkpoint: String,
    move_checkpoint: String,
    fence: String,
    lock_held: String,
    rebuild: String,
    pub(crate) status: String,
}

impl LeaseSql {
    fn new(s: &str) -> Self {
        let t = format!("{s}.projection_partitions");
        let key = "projection = $1 AND partition = $2";
        Self {
            create: format!(
                // The statement's own snapshot does not see the rows it inserts: count those from RETURNING.
                "WITH made AS (INSERT INTO {t} (projection, partition, partitions) \
                   SELECT $1, p, $2 FROM generate_series(0, $2 - 1) p ON CONFLICT DO NOTHING RETURNING partitions) \
                 SELECT min(n), max(n), count(*) FROM \
                   (SELECT partitions AS n FROM made UNION ALL SELECT partitions FROM {t} WHERE projection = $1) x"
            ),
            // The rows the statement writes are not visible to its own count: this worker is counted by the caller.
            beat: format!(
                "WITH me AS (INSERT INTO {s}.projection_workers (projection, owner, owner_name, expires_at) \
                   VALUES ($1, $2, $3, clock_timestamp() + $4::interval) \
                   ON CONFLICT (projection, owner) DO UPDATE SET expires_at = EXCLUDED.expires_at), \
                 gone AS (DELETE FROM {s}.projection_workers \
                   WHERE projection = $1 AND expires_at < clock_timestamp() - interval '1 hour') \
                 SELECT count(*) FROM {s}.projection_workers \
                 WHERE projection = $1 AND owner <> $2 AND expires_at > clock_timestamp()"
            ),
            claim: format!(
                "UPDATE {t} SET owner = $3, owner_name = $4, epoch = epoch + 1, claimed_at = clock_timestamp(), \
                   expires_at = clock_timestamp() + $5::interval, updated_at = now() \
                 WHERE {key} AND (owner IS NULL OR owner = $3 OR expires_at < clock_timestamp()) \
                 RETURNING epoch"
            ),
            holder: format!(
                "SELECT owner_name, claimed_at FROM {t} WHERE {key} AND expires_at > clock_timestamp()"
            ),
            renew: format!(
                "UPDATE {t} SET expires_at = clock_timestamp() + $5::interval \
                 WHERE {key} AND owner = $3 AND epoch = $4"
            ),
            release: format!(
                "UPDATE {t} SET owner = NULL, owner_name = NULL, claimed_at = NULL, expires_at = NULL, \
                   updated_at = now() \
                 WHERE {key} AND owner = $3 AND epoch = $4"
            ),
            checkpoint: format!(
                "SELECT transaction_id::text::bigint, global_position FROM {t} WHERE {key}"
            ),
            move_checkpoint: format!(
                "UPDATE {t} SET transaction_id = $6::bigint::text::xid8, global_position = $7, \
                   expires_at = clock_timestamp() + $5::interval, updated_at = now() \
                 WHERE {key} AND owner = $3 AND epoch = $4 \
                   AND transaction_id = $8::bigint::text::xid8 AND global_position = $9"
            ),
            fence: format!(
                "SELECT owner, epoch, transaction_id::text::bigint, global_position FROM {t} WHERE {key}"
            ),
            lock_held: format!(
                "SELECT partition FROM {t} WHERE {key} AND owner = $3 AND epoch = $4 FOR UPDATE"
            ),
            rebuild: format!(
                "UPDATE {t} SET epoch = epoch + 1, transaction_id = '0', global_position = 0, updated_at = now(), \
                   owner = CASE WHEN partition = $2 THEN owner END, \
                   owner_name = CASE WHEN partition = $2 THEN owner_name END, \
                   claimed_at = CASE WHEN partition = $2 THEN claimed_at END, \
                   expires_at = CASE WHEN partition = $2 THEN expires_at END \
                 WHERE projection = $1"
            ),
            // Each partition's lag counts the events of its streams after its checkpoint that the feed shows.
            status: format!(
                "SELECT p.partition, p.owner_name, p.epoch, p.claimed_at, \
                   extract(epoch FROM p.expires_at - clock_timestamp())::float8, \
                   p.transaction_id::text::bigint, p.global_position, c.scanned, c.matched \
                 FROM {t} p CROSS JOIN LATERAL ( \
                   SELECT count(*) AS scanned, count(*) FILTER (WHERE {partition_expr} = p.partition) AS matched \
                   FROM (SELECT e.stream_id FROM {s}.events e \
                     WHERE (e.transaction_id, e.global_position) > (p.transaction_id, p.global_position) \
                       AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY e.transaction_id, e.global_position LIMIT $2) x) c \
                 WHERE p.projection = $1 ORDER BY p.partition",
                partition_expr = super::partitions::partition_sql("x.stream_id", "p.partitions"),
            ),
        }
    }
}
