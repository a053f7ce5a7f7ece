//! SQLite figures: appends (one event sequential, 8 tasks, batches of 100), a 10,000-event load, a catch-up and the
//! live feed, each next to raw sqlx on a plain table in a file of its own with the store's settings (WAL,
//! `synchronous=FULL`), measured in the same run. The files live in a temporary directory, removed at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use es_core::{EventStore, NewEvent, Position};
use es_sqlite::SqliteEventStore;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{ConnectOptions, SqliteConnection};
use uuid::Uuid;

use crate::Options;
use crate::report::Figure;
use crate::stats::{percentile_ms, rate};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 8;
/// The poll interval of the store that plays another process (the default).
const POLL: Duration = Duration::from_millis(50);
const RAW_LIMIT: &str = "raw: prepared autocommit INSERT into a plain table, 1 connection";

pub(crate) async fn run(options: &Options) -> Result<Vec<Figure>, Error> {
    let dir = std::env::temp_dir().join(format!("es-bench-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = figures(options, &dir).await;
    std::fs::remove_dir_all(&dir)?;
    result
}

async fn figures(options: &Options, dir: &Path) -> Result<Vec<Figure>, Error> {
    let n = options.appends;
    let payload =
        serde_json::json!({ "amount": 100, "currency": "EUR", "note": "a typical small payload" });
    let raw_file = dir.join("raw.db");
    let mut raw = raw_connection(&raw_file).await?;
    sqlx::query(
        "CREATE TABLE raw_limit (id INTEGER PRIMARY KEY, stream_id TEXT, version INTEGER, type TEXT, \
         payload TEXT, UNIQUE (stream_id, version))",
    )
    .execute(&mut raw)
    .await?;
    // The store's table shape (ids unique, autoincrement positions), for a note: what the shape costs by itself.
    sqlx::query(
        "CREATE TABLE raw_events (global_position INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL, \
         stream_version INTEGER NOT NULL, event_id BLOB NOT NULL UNIQUE, event_type TEXT NOT NULL, \
         schema_version INTEGER NOT NULL, payload TEXT NOT NULL, metadata TEXT NOT NULL, created_at INTEGER NOT NULL, \
         UNIQUE (stream_id, stream_version))",
    )
    .execute(&mut raw)
    .await?;
    let store = SqliteEventStore::open(dir.join("store.db")).await?;
    let event = NewEvent::new("Deposited", 1, payload.clone());
    let mut figures = Vec::new();

    let raw_seq = raw_inserts(&raw_file, n, 1, &payload, RAW_INSERT).await?;
    let same_shape = raw_inserts(&raw_file, n, 1, &payload, SAME_SHAPE_INSERT).await?;
    let store_seq = crate::commands::single_appends(&store, &event, n, 1, "seq").await?;
    figures.push(
        Figure::new(
            "sqlite: append, 1 event per append, sequential",
            store_seq,
            "events/s",
        )
        .against(RAW_LIMIT, raw_seq)
        .note(format!(
            "synchronous=FULL: one fsync per commit; the same INSERT into a table of the store's shape: {same_shape:.0} events/s"
        )),
    );
    let raw_par = raw_inserts(&raw_file, n, CONCURRENCY, &payload, RAW_INSERT).await?;
    let store_par = crate::commands::single_appends(&store, &event, n, CONCURRENCY, "par").await?;
    figures.push(
        Figure::new(
            "sqlite: append, 1 event per append, 8 tasks",
            store_par,
            "events/s",
        )
        .against(
            "raw: the same INSERT, 8 connections (busy timeout)",
            raw_par,
        )
        .note("one writer at a time, in SQLite as in the store"),
    );
    let calls = (n / 20).max(10);
    let raw_batch = raw_batches(&mut raw, calls, 100, &payload).await?;
    let batch = crate::commands::batches(&store, "batch", calls, 100).await?;
    figures.push(
        Figure::new("sqlite: append batches of 100 events", batch, "events/s")
            .against("raw: 100 prepared INSERTs in one transaction", raw_batch),
    );

    crate::load::prepare(&store, "load", 10_000).await?;
    let (without, with) = crate::load::load_times(&store, "load").await?;
    let raw_load = raw_stream_select(&store, "account-load").await?;
    figures.extend(crate::load::figures(
        "sqlite",
        without,
        with,
        "raw SELECT + serde decode into the typed event + fold, 10,000 rows",
        raw_load,
    ));

    let events = options.catch_up_events;
    let feed = SqliteEventStore::open(dir.join("feed.db")).await?;
    crate::projections::fill(&feed, events).await?;
    let (store_read, raw_read) = catch_up(&feed, &mut raw, dir, events).await?;
    figures.push(
        Figure::new(
            "sqlite: read_all catch-up, pages of 1,000",
            store_read,
            "events/s",
        )
        .against("raw keyset SELECT + serde_json decode", raw_read)
        .note(format!("{events} events")),
    );
    let projection = crate::projections::counter_catch_up(&feed, events, events).await?;
    figures.push(
        Figure::new(
            "sqlite: projection catch-up, trivial handler",
            projection,
            "events/s",
        )
        .against("raw keyset SELECT + serde_json decode", raw_read)
        .note(format!(
            "{events} events, batches of 1,000, checkpoint per batch"
        )),
    );

    let (mut local, mut other) = live_latency(&feed, dir, &event, options.latency_samples).await?;
    for (name, samples) in [
        ("same process", &mut local),
        (
            "other store on the file (data_version poll, 50 ms)",
            &mut other,
        ),
    ] {
        for p in [50.0, 99.0] {
            figures.push(Figure::new(
                format!("sqlite live: append start → delivery, {name}, p{p}"),
                percentile_ms(samples, p),
                "ms",
            ));
        }
    }
    figures.extend(crate::consistency::figures(&store, "sqlite", n).await?);
    Ok(figures)
}

/// A connection to `file` with the store's settings.
async fn raw_connection(file: &Path) -> Result<SqliteConnection, Error> {
    Ok(SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await?)
}

/// An event into the plain table: stream, version, payload.
const RAW_INSERT: &str =
    "INSERT INTO raw_limit (stream_id, version, type, payload) VALUES (?1, ?2, 'Deposited', ?3)";
/// The same into a table of the store's shape.
const SAME_SHAPE_INSERT: &str = "INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, \
     schema_version, payload, metadata, created_at) VALUES (?1, ?2, randomblob(16), 'Deposited', 1, ?3, '{}', 0)";

/// `n` prepared autocommit single-row inserts (`sql`: stream, version, payload) over `connections` connections
/// of their own, 10 versions per stream.
async fn raw_inserts(
    file: &Path,
    n: usize,
    connections: usize,
    payload: &serde_json::Value,
    sql: &'static str,
) -> Result<f64, Error> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(raw_connection(file).await?);
    }
    let started = Instant::now();
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(task, mut conn)| {
            let payload = payload.clone();
            let run = Uuid::now_v7().simple().to_string();
            tokio::spawn(async move {
                for i in 0..n / connections {
                    sqlx::query(sql)
                        .bind(format!("raw-{run}-{task}-{}", i / 10))
                        .bind(i64::try_from(i % 10 + 1)?)
                        .bind(Json(&payload))
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

/// `calls` transactions of `batch` prepared inserts each, on one connection.
async fn raw_batches(
    conn: &mut SqliteConnection,
    calls: usize,
    batch: usize,
    payload: &serde_json::Value,
) -> Result<f64, Error> {
    let started = Instant::now();
    for call in 0..calls {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        for version in 1..=batch {
            sqlx::query(
                "INSERT INTO raw_limit (stream_id, version, type, payload) VALUES (?1, ?2, 'Ticked', ?3)",
            )
            .bind(format!("raw-batch-{call}"))
            .bind(i64::try_from(version)?)
            .bind(Json(payload))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    }
    Ok(rate(calls * batch, started.elapsed()))
}

/// Median time of a raw select of one stream's rows, each payload decoded by serde into the typed event and folded.
async fn raw_stream_select(store: &SqliteEventStore, stream: &str) -> Result<Duration, Error> {
    crate::load::median(|| async {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT event_type, schema_version, payload FROM events WHERE stream_id = ?1 ORDER BY stream_version",
        )
        .bind(stream)
        .fetch_all(store.readers())
        .await?;
        let rows = rows.iter().map(|(t, v, p)| (t.as_str(), *v, p.as_str()));
        std::hint::black_box(crate::load::fold_raw(rows)?);
        Ok(())
    })
    .await
}

/// Reads the whole `feed` store through `read_all`, and the same rows copied into the raw table with a keyset
/// select decoded by serde_json.
async fn catch_up(
    feed: &SqliteEventStore,
    raw: &mut SqliteConnection,
    dir: &Path,
    events: usize,
) -> Result<(f64, f64), Error> {
    let started = Instant::now();
    let (mut after, mut read) = (Position::START, 0);
    loop {
        let page = feed.read_all(after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        read += page.len();
    }
    let store_rate = rate(read, started.elapsed());
    if read != events {
        return Err(format!("read_all returned {read} of {events} events").into());
    }

    sqlx::query("DELETE FROM raw_limit")
        .execute(&mut *raw)
        .await?;
    sqlx::query("ATTACH DATABASE ?1 AS feed")
        .bind(dir.join("feed.db").display().to_string())
        .execute(&mut *raw)
        .await?;
    sqlx::query(
        "INSERT INTO raw_limit (stream_id, version, type, payload) \
         SELECT stream_id, stream_version, event_type, payload FROM feed.events ORDER BY global_position",
    )
    .execute(&mut *raw)
    .await?;
    sqlx::query("DETACH DATABASE feed")
        .execute(&mut *raw)
        .await?;
    let started = Instant::now();
    let (mut after, mut raw_read) = (0_i64, 0);
    loop {
        let rows: Vec<(i64, String, i64, String, String)> = sqlx::query_as(
            "SELECT id, stream_id, version, type, payload FROM raw_limit WHERE id > ?1 ORDER BY id LIMIT 1000",
        )
        .bind(after)
        .fetch_all(&mut *raw)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for row in &rows {
            std::hint::black_box(serde_json::from_str::<serde_json::Value>(&row.4)?);
        }
        raw_read += rows.len();
    }
    Ok((store_rate, rate(raw_read, started.elapsed())))
}

/// Append → delivery latency for a subscriber of `store`, and for one of a second store on the same file (as
/// another process would open it: woken by its poll of `PRAGMA data_version`).
async fn live_latency(
    store: &SqliteEventStore,
    dir: &Path,
    event: &NewEvent,
    samples: usize,
) -> Result<(Vec<Duration>, Vec<Duration>), Error> {
    let head = store.head().await?.unwrap_or(Position::START);
    let other = SqliteEventStore::builder()
        .poll_interval(POLL)
        .open(dir.join("feed.db"))
        .await?;
    let feeds = vec![store.subscribe_all(head), other.subscribe_all(head)];
    let mut latencies = crate::live::delivery_latency(store, event, feeds, samples, POLL).await?;
    let other_samples = latencies.pop().unwrap_or_default();
    Ok((latencies.pop().unwrap_or_default(), other_samples))
}
