//! Query reads and append conditions: events by type and tag across streams. A condition is checked inside the
//! append's `BEGIN IMMEDIATE` transaction, which holds the file's one write lock: no event can be stored between
//! the check and the commit.

use es_core::store::{AppendCondition, Query, QueryRead};
use es_core::{Position, StoreError, StreamId};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Row};

use crate::SqliteEventStore;
use crate::error::backend;
use crate::rows::{EVENT_COLUMNS, EventRow, position, position_of, recorded};
use crate::transaction::Failure;

/// The `WHERE` predicate of `query` (`0` for no item); its parameters are appended to `args`, in the order of its `?`s.
fn predicate(query: &Query, args: &mut Vec<String>) -> String {
    if query.items().is_empty() {
        return "0".to_owned();
    }
    let items: Vec<String> = query
        .items()
        .iter()
        .map(|item| {
            let mut all = Vec::new();
            if !item.event_types().is_empty() {
                let marks: Vec<String> = item
                    .event_types()
                    .iter()
                    .map(|t| {
                        args.push(t.clone());
                        "?".to_owned()
                    })
                    .collect();
                all.push(format!("event_type IN ({})", marks.join(", ")));
            }
            for tag in item.required_tags() {
                args.push(tag.clone());
                all.push(
                    "global_position IN (SELECT global_position FROM event_tags WHERE tag = ?)"
                        .to_owned(),
                );
            }
            match all.is_empty() {
                true => "1".to_owned(),
                false => format!("({})", all.join(" AND ")),
            }
        })
        .collect();
    format!("({})", items.join(" OR "))
}

fn arguments(after: i64, rest: &[String]) -> Result<SqliteArguments<'_>, StoreError> {
    let mut args = SqliteArguments::default();
    let failed = |e: sqlx::error::BoxDynError| StoreError::Backend {
        operation: "read_query",
        source: e,
    };
    args.add(after).map_err(failed)?;
    for value in rest {
        args.add(value.as_str()).map_err(failed)?;
    }
    Ok(args)
}

pub(crate) async fn read_query(
    store: &SqliteEventStore,
    query: &Query,
    after: Option<Position>,
) -> Result<QueryRead, StoreError> {
    let mut conn = store
        .readers()
        .acquire()
        .await
        .map_err(backend("read_query"))?;
    // One read transaction: the head and the events from the same snapshot.
    sqlx::query("BEGIN")
        .execute(&mut *conn)
        .await
        .map_err(backend("read_query"))?;
    let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend("read_query"))?;
    let mut params = Vec::new();
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE global_position > ? AND {} ORDER BY global_position",
        predicate(query, &mut params)
    );
    let rows: Result<Vec<EventRow>, _> =
        sqlx::query_as_with(&sql, arguments(after.map_or(0, position_of), &params)?)
            .fetch_all(&mut *conn)
            .await;
    let _ = sqlx::query("COMMIT").execute(&mut *conn).await;
    let events = rows
        .map_err(backend("read_query"))?
        .into_iter()
        .map(recorded)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(QueryRead {
        events,
        after: head.map(position),
    })
}

/// Inside the append's transaction: fails when an event matching the condition is stored after its position.
pub(crate) async fn check(
    conn: &mut SqliteConnection,
    condition: &AppendCondition,
) -> Result<(), Failure> {
    let mut params = Vec::new();
    let sql = format!(
        "SELECT global_position, stream_id, event_type FROM events WHERE global_position > ? AND {} \
         ORDER BY global_position LIMIT 1",
        predicate(&condition.query, &mut params)
    );
    let args = arguments(condition.after.map_or(0, position_of), &params)?;
    let Some(row) = sqlx::query_with(&sql, args)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(());
    };
    let (global, stream, event_type): (i64, String, String) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    Err(Failure::Refused(StoreError::ConditionFailed {
        after: condition.after,
        position: position(global),
        stream: StreamId::new(&stream).map_err(|e| StoreError::Backend {
            operation: "append_multi",
            source: format!("a stored stream id does not read: {e}").into(),
        })?,
        event_type,
    }))
}
