//! Query reads: events by type and tag across streams, below the oldest running transaction (nothing can commit
//! behind the read later), and the position an append conditions on: just before that horizon.

use es_core::store::{Query, QueryRead};
use es_core::{Position, StoreError};

use crate::PgEventStore;
use crate::error::backend;
use crate::rows::{bind_half, position, recorded_event};
use crate::schema::EVENT_COLUMNS;

pub(crate) async fn read_query(
    store: &PgEventStore,
    query: &Query,
    after: Option<Position>,
) -> Result<QueryRead, StoreError> {
    let s = store.schema().quoted();
    // $1, $2: after; then each item's types and tags, only those it has (so the tags' GIN index serves).
    let mut next = 3;
    let mut items = Vec::with_capacity(query.items().len());
    for item in query.items() {
        let mut all = Vec::new();
        if !item.event_types().is_empty() {
            all.push(format!("event_type = ANY(${next}::text[])"));
            next += 1;
        }
        if !item.required_tags().is_empty() {
            all.push(format!("tags @> ${next}::text[]"));
            next += 1;
        }
        items.push(match all.is_empty() {
            true => "true".to_owned(),
            false => format!("({})", all.join(" AND ")),
        });
    }
    let predicate = match items.is_empty() {
        true => "false".to_owned(),
        false => items.join(" OR "),
    };
    let sql = format!(
        "WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) \
         SELECT {EVENT_COLUMNS} FROM {s}.events \
         WHERE (transaction_id, global_position) > ($1::bigint::text::xid8, $2) \
           AND transaction_id < (SELECT xmin FROM horizon) AND ({predicate}) \
         ORDER BY transaction_id, global_position"
    );
    let from = after.unwrap_or(Position::START);
    let mut statement = sqlx::query(&sql)
        .bind(bind_half(from.commit))
        .bind(bind_half(from.prepare));
    for item in query.items() {
        if !item.event_types().is_empty() {
            statement = statement.bind(item.event_types().to_vec());
        }
        if !item.required_tags().is_empty() {
            statement = statement.bind(item.required_tags().to_vec());
        }
    }
    let mut conn = store
        .pool()
        .acquire()
        .await
        .map_err(backend("read_query"))?;
    // One snapshot for the rows and the horizon.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *conn)
        .await
        .map_err(backend("read_query"))?;
    let rows = statement.fetch_all(&mut *conn).await;
    let horizon: Result<i64, _> =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(&mut *conn)
            .await;
    let _ = sqlx::query("COMMIT").execute(&mut *conn).await;
    let rows = rows.map_err(backend("read_query"))?;
    let horizon = horizon.map_err(backend("read_query"))?;
    let events = rows
        .iter()
        .map(|row| recorded_event(row, None))
        .collect::<Result<Vec<_>, _>>()?;
    // Every event of a transaction before the horizon was read; one at or after it may still commit.
    Ok(QueryRead {
        events,
        after: Some(position(horizon.saturating_sub(1), i64::MAX)),
    })
}
