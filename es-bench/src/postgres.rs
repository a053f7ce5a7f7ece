//! PostgreSQL figures: appends, catch-up reads and live latency, each next to raw sqlx on the same table shape.

use std::time::{Duration, Instant};

use es_core::{EventStore, NewEvent, Position};
use es_postgres::PgEventStore;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use crate::Options;
use crate::report::Figure;
use crate::stats::{percentile_ms, rate, spread};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 8;

/// The raw limit's names in the table.
const RAW_LIMIT: &str = "raw limit: prepared INSERT into the plain table, 1 connection";
const RAW_LIMIT_8: &str = "raw limit: prepared INSERT into the plain table, 8 connections";

/// A bench schema with the store's tables and a raw table of the same shape; dropped at the end.
struct Bench {
    store: PgEventStore,
    pool: PgPool,
    schema: String,
    payload: serde_json::Value,
}

pub(crate) async fn run(options: &Options, url: &str) -> Result<Vec<Figure>, Error> {
    let schema = format!("es_bench_{}", std::process::id());
    let pool = PgPoolOptions::new()
        .max_connections(CONCURRENCY as u32 + 4)
        .test_before_acquire(false)
        .connect(url)
        .await?;
    let store = PgEventStore::builder()
        .schema(&schema)
        .build(pool.clone())?;
    store.migrate().await?;
    let bench = Bench {
        store,
        pool,
        schema,
        payload: serde_json::json!({ "amount": 100, "currency": "EUR", "note": "a typical small payload" }),
    };
    bench.create_raw_table().await?;
    let result = bench.figures(options, url).await;
    sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", bench.schema))
        .execute(&bench.pool)
        .await?;
    result
}

impl Bench {
    async fn create_raw_table(&self) -> Result<(), Error> {
        let s = &self.schema;
        for statement in [
            format!(
                "CREATE TABLE \"{s}\".raw_events (
                    global_position bigint GENERATED ALWAYS AS IDENTITY,
                    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
                    stream_id text NOT NULL, stream_version bigint NOT NULL, event_id uuid NOT NULL UNIQUE,
                    event_type text NOT NULL, schema_version integer NOT NULL, payload jsonb NOT NULL,
                    metadata jsonb NOT NULL DEFAULT '{{}}', created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (stream_id, stream_version))"
            ),
            format!("CREATE INDEX ON \"{s}\".raw_events (transaction_id, global_position)"),
            // The raw limit: the plainest table that holds events in stream order.
            format!(
                "CREATE TABLE \"{s}\".raw_limit (id bigserial PRIMARY KEY, stream_id text, version int, type text,
                    payload jsonb, UNIQUE (stream_id, version))"
            ),
            // The rejected design, kept here only to measure it: NOTIFY inside the append's transaction.
            format!(
                "CREATE FUNCTION \"{s}\".append_notify_inside(p_stream_id text, p_event_id uuid, p_payload jsonb)
                 RETURNS SETOF record LANGUAGE plpgsql AS $$
                 BEGIN
                    RETURN QUERY SELECT * FROM \"{s}\".append_many(ARRAY[p_stream_id], ARRAY[0::bigint], ARRAY[1],
                        ARRAY[p_event_id], ARRAY['Deposited'], ARRAY[1], ARRAY[p_payload], ARRAY['{{}}'::jsonb]);
                    PERFORM pg_notify('bench_inside_{s}', '');
                 END $$"
            ),
        ] {
            sqlx::query(&statement).execute(&self.pool).await?;
        }
        Ok(())
    }

    async fn figures(&self, options: &Options, url: &str) -> Result<Vec<Figure>, Error> {
        let n = options.appends;
        let mut figures = Vec::new();

        let limit_seq = self.raw_limit_inserts(url, n, 1).await?;
        let raw_seq = self.raw_inserts(n, 1).await?;
        let store_seq =
            crate::commands::single_appends(&self.store, &self.event(), n, 1, "seq").await?;
        let same_shape =
            |raw: f64| format!("same-shape raw table, pooled INSERT: {raw:.0} events/s");
        figures.push(
            Figure::new(
                "append, 1 event per append, sequential",
                store_seq,
                "events/s",
            )
            .against(RAW_LIMIT, limit_seq)
            .note(same_shape(raw_seq)),
        );
        let limit_par = self.raw_limit_inserts(url, n, CONCURRENCY).await?;
        let raw_par = self.raw_inserts(n, CONCURRENCY).await?;
        let store_par =
            crate::commands::single_appends(&self.store, &self.event(), n, CONCURRENCY, "par")
                .await?;
        figures.push(
            Figure::new("append, 1 event per append, 8 tasks", store_par, "events/s")
                .against(RAW_LIMIT_8, limit_par)
                .note(same_shape(raw_par)),
        );
        let seq = crate::commands::execute(&self.store, "exec-seq", n, 1, 1).await?;
        let par =
            crate::commands::execute(&self.store, "exec-par", n, CONCURRENCY, CONCURRENCY).await?;
        let hot = crate::commands::execute(&self.store, "exec-hot", n, CONCURRENCY, 4).await?;
        figures.push(
            Figure::new(
                "execute (load + decide + append), sequential",
                seq.rate,
                "commands/s",
            )
            .against(RAW_LIMIT, limit_seq)
            .note("1 event per command, 10 commands per meter"),
        );
        figures.push(
            Figure::new(
                "execute, 8 tasks on their own streams",
                par.rate,
                "commands/s",
            )
            .against(RAW_LIMIT_8, limit_par),
        );
        figures.push(
            Figure::new(
                "execute, 8 tasks contending on 4 streams",
                hot.rate,
                "commands/s",
            )
            .against("execute, 8 tasks on their own streams", par.rate)
            .note(format!(
                "{} conflicts decided again, {} commands failed",
                hot.retries, hot.failed
            )),
        );
        let calls = (n / 20).max(10);
        let raw_batch = self.raw_unnest_batches(calls, 100).await?;
        let batch = crate::commands::batches(&self.store, "batch", calls, 100).await?;
        figures.push(
            Figure::new("append batches of 100 events", batch, "events/s")
                .against("raw sqlx UNNEST insert of 100 rows", raw_batch),
        );
        let inside = self.notify_inside_appends(n, CONCURRENCY).await?;
        figures.push(
            Figure::new(
                "append with NOTIFY inside the transaction, 8 tasks",
                inside,
                "events/s",
            )
            .against("append, NOTIFY after commit (ours), 8 tasks", store_par)
            .note("the design we did not keep"),
        );

        crate::projections::fill(&self.store, options.catch_up_events).await?;
        self.fill_raw().await?;
        let (store_read, raw_read, total) = self.catch_up().await?;
        figures.push(
            Figure::new("read_all catch-up, pages of 1,000", store_read, "events/s")
                .against("raw keyset SELECT + serde_json decode", raw_read)
                .note(format!("{total} events")),
        );
        figures.extend(
            crate::projections::postgres(
                &self.store,
                total,
                self.ticks().await?,
                raw_read,
                options.latency_samples,
            )
            .await?,
        );

        figures.extend(crate::processes::postgres(&self.store, options.appends / 4).await?);
        figures.extend(crate::consistency::figures(&self.store, "postgres", n).await?);

        crate::load::prepare(&self.store, "load", 10_000).await?;
        let (without, with) = crate::load::load_times(&self.store, "load").await?;
        let raw = self.raw_stream_select("account-load").await?;
        figures.extend(crate::load::figures(
            "postgres",
            without,
            with,
            "raw SELECT + serde decode into the typed event + fold, 10,000 rows",
            raw,
        ));

        let samples = options.latency_samples;
        let (mut local, mut remote) = self.live_latency(url, samples).await?;
        figures.push(Figure::new(
            "live: append start → delivery, same process, p50",
            percentile_ms(&mut local, 50.0),
            "ms",
        ));
        figures.push(Figure::new(
            "live: append start → delivery, same process, p99",
            percentile_ms(&mut local, 99.0),
            "ms",
        ));
        figures.push(
            Figure::new(
                "live: append start → delivery, other process (NOTIFY), p50",
                percentile_ms(&mut remote, 50.0),
                "ms",
            )
            .note("a second store on its own pool, poll interval 1 h"),
        );
        figures.push(Figure::new(
            "live: append start → delivery, other process (NOTIFY), p99",
            percentile_ms(&mut remote, 99.0),
            "ms",
        ));
        let mut inside_latency = self.notify_inside_latency(samples).await?;
        figures.push(
            Figure::new(
                "live: NOTIFY-inside append start → notification, p50",
                percentile_ms(&mut inside_latency, 50.0),
                "ms",
            )
            .note("the design we did not keep"),
        );
        Ok(figures)
    }

    fn event(&self) -> NewEvent {
        NewEvent::new("Deposited", 1, self.payload.clone())
    }

    /// `n` single-row inserts, each its own transaction, over `tasks` connections.
    async fn raw_inserts(&self, n: usize, tasks: usize) -> Result<f64, Error> {
        let sql = format!(
            "INSERT INTO \"{}\".raw_events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) \
             VALUES ($1, 1, $2, 'Deposited', 1, $3, '{{}}')",
            self.schema
        );
        let (pool, payload) = (self.pool.clone(), self.payload.clone());
        spread(n, tasks, move |task, i| {
            let (pool, sql, payload) = (pool.clone(), sql.clone(), payload.clone());
            async move {
                sqlx::query(&sql)
                    .bind(format!("raw-{task}-{i}-{}", Uuid::now_v7().simple()))
                    .bind(Uuid::now_v7())
                    .bind(&payload)
                    .execute(&pool)
                    .await?;
                Ok(())
            }
        })
        .await
    }

    /// `n` single-row autocommit inserts into the plain raw table, each prepared, over `connections` dedicated
    /// connections (no pool), 10 versions per stream: the raw limit of an append.
    async fn raw_limit_inserts(
        &self,
        url: &str,
        n: usize,
        connections: usize,
    ) -> Result<f64, Error> {
        let sql = format!(
            "INSERT INTO \"{}\".raw_limit (stream_id, version, type, payload) VALUES ($1, $2, 'Deposited', $3)",
            self.schema
        );
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections {
            conns.push(sqlx::PgConnection::connect(url).await?);
        }
        let started = Instant::now();
        let handles: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(task, mut conn)| {
                let (sql, payload) = (sql.clone(), self.payload.clone());
                let run = Uuid::now_v7().simple().to_string();
                tokio::spawn(async move {
                    for i in 0..n / connections {
                        sqlx::query(&sql)
                            .bind(format!("raw-{run}-{task}-{}", i / 10))
                            .bind(i32::try_from(i % 10 + 1)?)
                            .bind(&payload)
                            .execute(&mut conn)
                            .await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        for handle in handles {
            handle.await??;
        }
        Ok(rate(n / connections * connections, started.elapsed()))
    }

    /// How many stored events the projection benchmarks handle (every `Ticked`).
    async fn ticks(&self) -> Result<usize, Error> {
        let kinds = es_core::evolution::EventCatalog::stored_event_types(&self.store).await?;
        let ticks = kinds
            .iter()
            .filter(|k| k.event_type == "Ticked")
            .map(|k| k.count)
            .sum::<u64>();
        Ok(usize::try_from(ticks)?)
    }

    /// `calls` multi-row inserts of `batch` rows each through `UNNEST`, one transaction each.
    async fn raw_unnest_batches(&self, calls: usize, batch: usize) -> Result<f64, Error> {
        let sql = format!(
            "INSERT INTO \"{}\".raw_events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) \
             SELECT $1, u.v, u.id, 'Ticked', 1, u.p, '{{}}' FROM unnest($2::bigint[], $3::uuid[], $4::jsonb[]) AS u(v, id, p)",
            self.schema
        );
        let versions: Vec<i64> = (1..=batch as i64).collect();
        let payloads: Vec<serde_json::Value> =
            (0..batch).map(|n| serde_json::json!({ "n": n })).collect();
        let ids: Vec<Vec<Uuid>> = (0..calls)
            .map(|_| (0..batch).map(|_| Uuid::now_v7()).collect())
            .collect();
        let started = Instant::now();
        for (call, ids) in ids.iter().enumerate() {
            sqlx::query(&sql)
                .bind(format!("raw-batch-{call}"))
                .bind(&versions)
                .bind(ids)
                .bind(&payloads)
                .execute(&self.pool)
                .await?;
        }
        Ok(rate(calls * batch, started.elapsed()))
    }

    /// The call of the rejected design: the append function, then `pg_notify` inside the same transaction.
    fn notify_inside_sql(&self) -> String {
        format!(
            "SELECT 1 FROM \"{}\".append_notify_inside($1, $2, $3) \
             AS t(i integer, outcome text, a bigint, b bigint, c bigint, d bigint, e bigint, f bigint, g bigint, h uuid, \
                  j text, k text, l bigint)",
            self.schema
        )
    }

    /// Like `commands::single_appends` over `tasks` tasks, through the variant that notifies inside the transaction.
    async fn notify_inside_appends(&self, n: usize, tasks: usize) -> Result<f64, Error> {
        let (pool, sql, payload) = (
            self.pool.clone(),
            self.notify_inside_sql(),
            self.payload.clone(),
        );
        spread(n, tasks, move |task, i| {
            let (pool, sql, payload) = (pool.clone(), sql.clone(), payload.clone());
            async move {
                sqlx::query(&sql)
                    .bind(format!("inside-{task}-{i}"))
                    .bind(Uuid::now_v7())
                    .bind(&payload)
                    .execute(&pool)
                    .await?;
                Ok(())
            }
        })
        .await
    }

    /// Copies the store's events into the raw table, so both reads cover the same rows.
    async fn fill_raw(&self) -> Result<(), Error> {
        let s = &self.schema;
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".raw_events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) \
             SELECT 'copy-' || stream_id, stream_version, gen_random_uuid(), event_type, schema_version, payload, metadata \
             FROM \"{s}\".events"
        ))
        .execute(&self.pool)
        .await?;
        // Fresh statistics for both tables, as autovacuum would have them in a steady state.
        sqlx::query(&format!("ANALYZE \"{s}\".events, \"{s}\".raw_events"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Reads the whole store through `read_all`, and the raw table with the same keyset query and decoding.
    async fn catch_up(&self) -> Result<(f64, f64, usize), Error> {
        // Wait until every appended event is below the horizon.
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\".events", self.schema))
                .fetch_one(&self.pool)
                .await?;
        let total = usize::try_from(total)?;
        let started = Instant::now();
        let (mut after, mut read) = (Position::START, 0);
        loop {
            let page = self.store.read_all(after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            read += page.len();
        }
        let store_rate = rate(read, started.elapsed());

        let sql = format!(
            "SELECT transaction_id::text::bigint, global_position, stream_id, stream_version, event_id, event_type, \
             schema_version, payload, metadata, created_at FROM \"{}\".raw_events \
             WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY raw_events.transaction_id, raw_events.global_position LIMIT 1000",
            self.schema
        );
        type RawRow = (
            i64,
            i64,
            String,
            i64,
            Uuid,
            String,
            i32,
            serde_json::Value,
            serde_json::Value,
            chrono::DateTime<chrono::Utc>,
        );
        let started = Instant::now();
        let (mut after, mut raw_read) = ((0_i64, 0_i64), 0);
        loop {
            let rows: Vec<RawRow> = sqlx::query_as(&sql)
                .bind(after.0)
                .bind(after.1)
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = rows.last() else { break };
            after = (last.0, last.1);
            raw_read += rows.len();
        }
        let raw_rate = rate(raw_read, started.elapsed());
        if read != total {
            return Err(format!("read_all returned {read} of {total} events").into());
        }
        Ok((store_rate, raw_rate, read))
    }

    /// Median time of a raw select of one stream's rows, each payload decoded by serde straight into the typed
    /// event and folded: the floor under a load.
    async fn raw_stream_select(&self, stream: &str) -> Result<Duration, Error> {
        let sql = format!(
            "SELECT event_type, schema_version, payload::text FROM \"{}\".events \
             WHERE stream_id = $1 ORDER BY stream_version",
            self.schema
        );
        crate::load::median(|| async {
            let rows: Vec<(String, i32, String)> = sqlx::query_as(&sql)
                .bind(stream)
                .fetch_all(&self.pool)
                .await?;
            let rows = rows
                .iter()
                .map(|(t, v, p)| (t.as_str(), i64::from(*v), p.as_str()));
            std::hint::black_box(crate::load::fold_raw(rows)?);
            Ok(())
        })
        .await
    }

    /// Append → delivery latency for a subscriber of this store, and for one of a second store on its own pool.
    async fn live_latency(
        &self,
        url: &str,
        samples: usize,
    ) -> Result<(Vec<Duration>, Vec<Duration>), Error> {
        let head = self
            .store
            .read_all(Position::START, usize::MAX)
            .await?
            .last()
            .map_or(Position::START, |e| e.position);
        let other = PgEventStore::builder()
            .schema(&self.schema)
            .poll_interval(Duration::from_secs(3600))
            .connect(url)
            .await?;
        let feeds = vec![self.store.subscribe_all(head), other.subscribe_all(head)];
        let mut latencies = crate::live::delivery_latency(
            &self.store,
            &self.event(),
            feeds,
            samples,
            Duration::ZERO,
        )
        .await?;
        let remote = latencies.pop().unwrap_or_default();
        Ok((latencies.pop().unwrap_or_default(), remote))
    }

    /// Append start → notification received, when the append notifies inside its transaction.
    async fn notify_inside_latency(&self, samples: usize) -> Result<Vec<Duration>, Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen(&format!("bench_inside_{}", self.schema))
            .await?;
        let sql = self.notify_inside_sql();
        let mut out = Vec::new();
        for i in 0..samples {
            let started = Instant::now();
            sqlx::query(&sql)
                .bind(format!("inside-live-{i}"))
                .bind(Uuid::now_v7())
                .bind(&self.payload)
                .execute(&self.pool)
                .await?;
            listener.recv().await?;
            out.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(out)
    }
}
