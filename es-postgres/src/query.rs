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
    // $1, $2: after; then per item its types and tags (NULL: any type; an empty array of tags: none required).
    let items: Vec<String> = (0..query.items().len())
        .map(|i| {
            let (types, tags) = (3 + 2 * i, 4 + 2 * i);
            format!(
                "(({types}::text[] IS NULL OR event_type = ANY({types}::text[])) \
                 AND (cardinality({tags}::text[]) = 0 OR tags @> {tags}::text[]))",
                types = format!("${types}"),
                tags = format!("${tags}")
            )
        })
        .collect();
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
        let types = (!item.event_types().is_empty()).then(|| item.event_types().to_vec());
        statement = statement.bind(types).bind(item.required_tags().to_vec());
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
