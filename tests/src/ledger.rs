//! A test projection with a checkable result: postings per stream, summed; each event must count exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::{HandlerError, ProjectionState, RunningProjections};
use es_core::{
    DomainEvent, EventId, EventStore, ExpectedVersion, NewEvent, Position, Projection,
    RecordedEvent, StreamId,
};
use es_postgres::{PgEventStore, PgProjection};
use sqlx::PgConnection;

/// The ledger's one event.
#[derive(Debug, PartialEq, DomainEvent)]
pub enum LedgerEvent {
    /// An amount posted to the stream's account.
    Posted {
        /// The amount; [`POISON`] makes handlers fail while poisoning is on.
        amount: i64,
    },
}

/// The amount that handlers refuse while poisoned.
pub const POISON: i64 = -666;

/// Totals per stream and how often each event was applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum per stream.
    pub totals: HashMap<String, i64>,
    /// Applications per stream.
    pub counts: HashMap<String, i64>,
}

/// Appends `n` postings round-robin over `streams` streams, in batches of `batch`; returns the expected totals and
/// the last position.
pub async fn post<S: EventStore>(
    store: &S,
    prefix: &str,
    n: usize,
    streams: usize,
    batch: usize,
) -> (Totals, Position) {
    let mut expected = Totals::default();
    let mut last = Position::START;
    let mut i = 0;
    while i < n {
        let stream = format!("{prefix}-{}", (i / batch) % streams);
        let size = batch.min(n - i);
        let events: Vec<NewEvent> = (i..i + size)
            .map(|k| {
                NewEvent::from_domain(
                    &LedgerEvent::Posted {
                        amount: (k % 97) as i64 + 1,
                    },
                    Default::default(),
                )
                .expect("encode")
            })
            .collect();
        for k in i..i + size {
            *expected.totals.entry(stream.clone()).or_default() += (k % 97) as i64 + 1;
            *expected.counts.entry(stream.clone()).or_default() += 1;
        }
        let stream_id = StreamId::new(&stream).expect("stream id");
        last = store
            .append(&stream_id, ExpectedVersion::Any, events)
            .await
            .expect("append")
            .last_position;
        i += size;
    }
    (expected, last)
}

/// In a worker process: prints the `ledger` projection's state (`standby`, `running`, `lost`) whenever it changes,
/// until it runs caught up with `applied()` (the read model's count) at `expected`; then shuts the runner down.
/// Panics when the projection stops or fails.
pub async fn report_until_applied<F, Fut>(running: RunningProjections, expected: i64, applied: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let mut reported = None;
    loop {
        let status = running.status("ledger").await.expect("status");
        let state = match status.state {
            ProjectionState::Starting => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            ProjectionState::Standby { .. } => "standby",
            ProjectionState::Running => "running",
            ProjectionState::Lost { .. } => "lost",
            other => panic!("projection ended: {other:?}"),
        };
        if reported != Some(state) {
            println!("{state}");
            reported = Some(state);
        }
        if state == "running" && status.lag_events == 0 && applied().await == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
}

/// The ledger in memory (at-least-once): counts every application per event id.
#[derive(Clone, Debug, Default)]
pub struct MemoryLedger {
    /// Applications per event id.
    pub applied: Arc<Mutex<HashMap<EventId, u32>>>,
    /// The totals.
    pub totals: Arc<Mutex<Totals>>,
    /// Whether [`POISON`] fails.
    pub poisoned: Arc<AtomicBool>,
    /// The stream categories it reads (empty: all).
    pub categories: &'static [&'static str],
    name: &'static str,
}

impl MemoryLedger {
    /// A ledger projection named `name`, poisoned.
    pub fn named(name: &'static str) -> Self {
        let ledger = Self {
            name,
            ..Self::default()
        };
        ledger.poisoned.store(true, Ordering::SeqCst);
        ledger
    }

    /// Reads only streams of `categories`.
    pub fn reading(mut self, categories: &'static [&'static str]) -> Self {
        self.categories = categories;
        self
    }

    /// The totals now.
    pub fn totals(&self) -> Totals {
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Projection for MemoryLedger {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        self.name
    }

    fn categories(&self) -> &[&str] {
        self.categories
    }

    async fn handle(&self, event: LedgerEvent, record: &RecordedEvent) -> Result<(), HandlerError> {
        let LedgerEvent::Posted { amount } = event;
        if amount == POISON && self.poisoned.load(Ordering::SeqCst) {
            return Err(format!("poisoned posting in {}", record.stream_id).into());
        }
        *self
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(record.event_id)
            .or_default() += 1;
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        *totals
            .totals
            .entry(record.stream_id.to_string())
            .or_default() += amount;
        *totals
            .counts
            .entry(record.stream_id.to_string())
            .or_default() += 1;
        Ok(())
    }

    async fn reset(&self) -> Result<(), HandlerError> {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self.totals.lock().unwrap_or_else(PoisonError::into_inner) = Totals::default();
        Ok(())
    }
}

/// The ledger in PostgreSQL tables of the store's schema (exactly-once): `ledger_applied` (one row per event id;
/// a second application would violate its key) and `ledger_totals`.
#[derive(Clone, Debug)]
pub struct PgLedger {
    schema: String,
    /// A pause per event, to make batches long enough to be killed in the middle.
    pub slow: Duration,
    /// Whether [`POISON`] fails.
    pub poisoned: Arc<AtomicBool>,
    /// A pause per batch (with `batched`), to make batches long enough to be paused in the middle.
    pub batch_pause: Duration,
    /// Whether it writes each batch with one statement per table (`handle_batch`), failing the whole batch
    /// without naming the event when one is poisoned.
    pub batched: bool,
}

impl PgLedger {
    /// The ledger of `store`'s schema; creates its tables.
    pub async fn create(store: &PgEventStore) -> Self {
        let schema = store.schema().as_str().to_owned();
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS \"{schema}\".ledger_applied (event_id uuid PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL, seq bigserial);
             CREATE TABLE IF NOT EXISTS \"{schema}\".ledger_totals (stream text PRIMARY KEY, total bigint NOT NULL, count bigint NOT NULL);"
        ))
        .execute(store.pool())
        .await
        .expect("create ledger tables");
        Self {
            schema,
            slow: Duration::ZERO,
            poisoned: Arc::new(AtomicBool::new(true)),
            batched: false,
            batch_pause: Duration::ZERO,
        }
    }

    /// The totals as stored.
    pub async fn totals(&self, store: &PgEventStore) -> Totals {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT stream, total, count FROM \"{}\".ledger_totals",
            self.schema
        ))
        .fetch_all(store.pool())
        .await
        .expect("read totals");
        let mut totals = Totals::default();
        for (stream, total, count) in rows {
            totals.totals.insert(stream.clone(), total);
            totals.counts.insert(stream, count);
        }
        totals
    }

    /// The streams whose events were applied out of stream order (a version after a later one).
    pub async fn out_of_order(&self, store: &PgEventStore) -> Vec<String> {
        sqlx::query_scalar(&format!(
            "SELECT DISTINCT stream FROM (SELECT stream, version, \
               lag(version) OVER (PARTITION BY stream ORDER BY seq) AS before FROM \"{}\".ledger_applied) x \
             WHERE version <= before",
            self.schema
        ))
        .fetch_all(store.pool())
        .await
        .expect("check the order")
    }

    /// Rows in `ledger_applied`.
    pub async fn applied(&self, store: &PgEventStore) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{}\".ledger_applied",
            self.schema
        ))
        .fetch_one(store.pool())
        .await
        .expect("count applied")
    }
}

#[async_trait]
impl PgProjection for PgLedger {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "ledger"
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: LedgerEvent,
        record: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let LedgerEvent::Posted { amount } = event;
        if amount == POISON && self.poisoned.load(Ordering::SeqCst) {
            return Err(format!("poisoned posting in {}", record.stream_id).into());
        }
        if !self.slow.is_zero() {
            tokio::time::sleep(self.slow).await;
        }
        let s = &self.schema;
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".ledger_applied (event_id, stream, version) VALUES ($1, $2, $3)"
        ))
        .bind(record.event_id.as_uuid())
        .bind(record.stream_id.as_str())
        .bind(i64::try_from(record.version.get()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".ledger_totals (stream, total, count) VALUES ($1, $2, 1)
             ON CONFLICT (stream) DO UPDATE SET total = ledger_totals.total + EXCLUDED.total, count = ledger_totals.count + 1"
        ))
        .bind(record.stream_id.as_str())
        .bind(amount)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: Vec<(LedgerEvent, &RecordedEvent)>,
    ) -> Result<(), HandlerError> {
        if !self.batched {
            for (event, record) in events {
                self.handle(tx, event, record).await?;
            }
            return Ok(());
        }
        let mut ids = Vec::with_capacity(events.len());
        let mut streams = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut sums: HashMap<&str, (i64, i64)> = HashMap::new();
        for (LedgerEvent::Posted { amount }, record) in &events {
            if *amount == POISON && self.poisoned.load(Ordering::SeqCst) {
                return Err("a poisoned posting in the batch".into());
            }
            ids.push(record.event_id.as_uuid());
            streams.push(record.stream_id.as_str());
            versions.push(i64::try_from(record.version.get()).unwrap_or(i64::MAX));
            let sum = sums.entry(record.stream_id.as_str()).or_default();
            *sum = (sum.0 + amount, sum.1 + 1);
        }
        if !self.batch_pause.is_zero() {
            tokio::time::sleep(self.batch_pause).await;
        }
        let s = &self.schema;
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".ledger_applied (event_id, stream, version) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[])"
        ))
        .bind(ids)
        .bind(streams)
        .bind(versions)
        .execute(&mut *tx)
        .await?;
        let (accounts, sums): (Vec<&str>, Vec<(i64, i64)>) = sums.into_iter().unzip();
        let (totals, counts): (Vec<i64>, Vec<i64>) = sums.into_iter().unzip();
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".ledger_totals (stream, total, count) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT (stream) DO UPDATE SET total = ledger_totals.total + EXCLUDED.total, \
               count = ledger_totals.count + EXCLUDED.count"
        ))
        .bind(accounts)
        .bind(totals)
        .bind(counts)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn reset(&self, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let truncate = format!(
            "TRUNCATE \"{0}\".ledger_applied, \"{0}\".ledger_totals",
            self.schema
        );
        sqlx::query(&truncate).execute(tx).await?;
        Ok(())
    }
}
