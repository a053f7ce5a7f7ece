//! Operator reads at scale: what a projection's lag costs to read (a status, a metrics sample, the operator
//! overview) with many events stored, against the plain `count(*)` over the lag that such a read used to be.
//!
//! The fill inserts a million rows per transaction: while one runs, every reader of the global order on the same
//! server waits behind it (as for any long write transaction), so do not run it beside other work on that server.

use std::time::Duration;

use es_core::{EventStore, Position};
use es_postgres::PgEventStore;

use crate::report::Figure;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Rows per fill statement.
const FILL_CHUNK: usize = 1_000_000;

pub(crate) async fn run(url: &str, events: usize) -> Result<Vec<Figure>, Error> {
    let schema = format!("es_bench_scale_{}", std::process::id());
    let store = PgEventStore::builder()
        .schema(&schema)
        .max_connections(4)
        .connect(url)
        .await?;
    store.migrate().await?;
    let result = figures(&store, &schema, events).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await?;
    result
}

async fn figures(store: &PgEventStore, schema: &str, events: usize) -> Result<Vec<Figure>, Error> {
    let mut from = 0;
    while from < events {
        let to = (from + FILL_CHUNK).min(events);
        sqlx::query(&format!(
            "INSERT INTO \"{schema}\".events (stream_id, stream_version, event_id, event_type, schema_version, payload, metadata) \
             SELECT 'acct-' || (g % 10000), g / 10000 + 1, gen_random_uuid(), 'Posted', 1, '{{\"amount\": 1}}', '{{}}' \
             FROM generate_series($1::bigint, $2::bigint - 1) g"
        ))
        .bind(from as i64)
        .bind(to as i64)
        .execute(store.pool())
        .await?;
        from = to;
    }
    sqlx::query(&format!("VACUUM ANALYZE \"{schema}\".events"))
        .execute(store.pool())
        .await?;
    let (commit, prepare): (i64, i64) = sqlx::query_as(&format!(
        "SELECT transaction_id::text::bigint, global_position FROM \"{schema}\".events \
         ORDER BY transaction_id, global_position OFFSET $1 LIMIT 1"
    ))
    .bind((events / 2) as i64)
    .fetch_one(store.pool())
    .await?;
    let halfway = Position::new(commit as u64, prepare as u64);
    let plain = format!(
        "SELECT count(*) FROM \"{schema}\".events WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2) \
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    );
    let mut figures = Vec::new();
    for (what, after) in [
        ("half the log behind", halfway),
        ("a new projection, the whole log behind", Position::START),
    ] {
        let ours = crate::load::median(|| async {
            store
                .count_after(after)
                .await
                .map(drop)
                .map_err(Error::from)
        })
        .await?;
        let raw = crate::load::median(|| async {
            sqlx::query_scalar::<_, i64>(&plain)
                .bind(after.commit as i64)
                .bind(after.prepare as i64)
                .fetch_one(store.pool())
                .await
                .map(drop)
                .map_err(Error::from)
        })
        .await?;
        figures.push(
            Figure::new(format!("postgres: read a projection's lag, {what}"), ms(ours), "ms")
                .against("the plain count(*) over the lag it used to be", ms(raw))
                .note(format!(
                    "{events} events stored; exact up to count_cap (100,000), estimated from positions past it; median of 7"
                )),
        );
    }
    Ok(figures)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
