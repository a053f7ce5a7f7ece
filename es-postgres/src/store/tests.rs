//! The store's queries and migrations against a real database.

use super::*;
use crate::rows::bind_half;
use es_core::{EventStore, StreamRead};
use sqlx::postgres::PgPoolOptions;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".to_owned())
}

/// A store migrated into a fresh schema `<prefix>_<pid>`, and the schema's name.
async fn migrated(prefix: &str) -> (PgEventStore, String) {
    let schema = format!("{prefix}_{}", std::process::id());
    let store = PgEventStore::builder()
        .schema(&schema)
        .connect(&database_url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, schema)
}

/// Drops a schema `migrated` made.
async fn drop_schema(store: &PgEventStore, schema: &str) {
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await
        .unwrap();
}

/// The feed queries must walk the `(transaction_id, global_position)` index, never sort the table: a sort made
/// every page cost a full scan (catch-up fell from ~190k to ~30k events/s at 100k events) when `ORDER BY`
/// named the output alias instead of the column.
#[tokio::test]
async fn the_feed_and_head_queries_walk_the_feed_index_instead_of_sorting() {
    let (store, schema) = migrated("es_test_plan").await;
    let pool = store.pool();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".events (stream_id, stream_version, event_id, event_type, schema_version, payload) \
         SELECT 's-' || (g % 50), g, gen_random_uuid(), 'E', 1, '{{}}' FROM generate_series(1, 20000) g"
    ))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(&format!("ANALYZE \"{schema}\".events"))
        .execute(pool)
        .await
        .unwrap();
    let explain = |sql: &str| format!("EXPLAIN {sql}");
    let read_all: Vec<String> = sqlx::query_scalar(&explain(&store.inner.sql.events.read_all))
        .bind(0_i64)
        .bind(0_i64)
        .bind(1000_i64)
        .fetch_all(pool)
        .await
        .unwrap();
    let head: Vec<String> = sqlx::query_scalar(&explain(&store.inner.sql.events.head))
        .fetch_all(pool)
        .await
        .unwrap();
    drop_schema(&store, &schema).await;
    for plan in [read_all.join("\n"), head.join("\n")] {
        assert!(
            plan.contains("events_transaction_position") && !plan.contains("Sort"),
            "{plan}"
        );
    }
}

/// A search by tag (a condition's check, a query read) must not read GIN's pending list, which grows to 4 MB on a
/// busy store: the tags' index writes each event's tags into the index itself (migration 14).
#[tokio::test]
async fn the_tags_index_is_written_without_a_pending_list() {
    let (store, schema) = migrated("es_test_tags_index").await;
    let options: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = 'events_tags'",
    )
    .bind(&schema)
    .fetch_one(store.pool())
    .await
    .unwrap();
    drop_schema(&store, &schema).await;
    assert_eq!(options, Some(vec!["fastupdate=off".to_owned()]));
}

/// Migration 6 drops the `streams` table and the append function of release 0.1: a store written by that
/// release keeps every event, version and position, and appends go on from where it stopped.
#[tokio::test]
async fn migrating_a_store_written_by_the_previous_schema_keeps_its_events_and_positions() {
    let url = database_url();
    let schema = format!("es_test_upgrade_{}", std::process::id());
    let store = PgEventStore::builder()
        .schema(&schema)
        .connect(&url)
        .await
        .unwrap();
    let mut conn = store.pool().acquire().await.unwrap().detach();
    for statement in [
        format!("CREATE SCHEMA \"{schema}\""),
        format!("SET search_path TO \"{schema}\""),
    ] {
        sqlx::query(&statement).execute(&mut conn).await.unwrap();
    }
    let previous = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(MIGRATOR.migrations[..5].to_vec()),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    previous.run_direct(&mut conn).await.unwrap();
    for n in 0..3 {
        let (outcome,): (String,) = sqlx::query_as(
            "SELECT outcome FROM append_events('acct-1', NULL, ARRAY[gen_random_uuid()], ARRAY['E'], \
             ARRAY[1], ARRAY[jsonb_build_object('n', $1::int)], ARRAY['{}'::jsonb])",
        )
        .bind(n)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(outcome, "appended");
    }
    let before: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, global_position, stream_version FROM events ORDER BY global_position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();

    store.migrate().await.unwrap();
    let stream = StreamId::new("acct-1").unwrap();
    let events = store
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    let after: Vec<(i64, i64, i64)> = events
        .iter()
        .map(|e| {
            (
                bind_half(e.position.commit),
                bind_half(e.position.prepare),
                bind_half(e.version.get()),
            )
        })
        .collect();
    assert_eq!(after, before);
    assert_eq!(events[2].payload, serde_json::json!({ "n": 2 }));
    let stale = store
        .append(
            &stream,
            ExpectedVersion::Exact(es_core::Version::new(2)),
            vec![NewEvent::new("E", 1, serde_json::json!({}))],
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let next = store
        .append(
            &stream,
            ExpectedVersion::Exact(es_core::Version::new(3)),
            vec![NewEvent::new("E", 1, serde_json::json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(next.last_version.get(), 4);
    drop_schema(&store, &schema).await;
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let pool = runtime
        .block_on(async { PgPoolOptions::new().connect_lazy("postgres://nobody@127.0.0.1:1/none") })
        .unwrap();
    let built = PgEventStore::builder().build(pool);
    assert!(matches!(built, Err(PgSetupError::NoRuntime)), "{built:?}");
}

/// `sql/append.sql` is the append path as the migrated database has it (the migrations only show how it got
/// there): the test fails when a migration changes a function without the file following. `ES_BLESS=1` rewrites
/// the file from the database.
#[tokio::test]
async fn sql_append_sql_is_the_append_functions_of_a_migrated_database() {
    let (store, schema) = migrated("es_test_append_sql").await;
    let functions: Vec<(String,)> = sqlx::query_as(
        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1 ORDER BY p.proname, p.oid",
    )
    .bind(&schema)
    .fetch_all(store.pool())
    .await
    .unwrap();
    drop_schema(&store, &schema).await;
    let mut live = String::from(
        "-- The append path as a migrated database has it: the functions of the store's schema (`es` here), as\n\
         -- `pg_get_functiondef` prints them. Generated: `ES_BLESS=1 cargo test -p es-postgres sql_append_sql`;\n\
         -- checked against a freshly migrated schema by that test. Change them with a new migration.\n",
    );
    for (definition,) in functions {
        live.push('\n');
        live.push_str(definition.replace(&schema, "es").trim_end());
        live.push_str(";\n");
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/append.sql");
    if std::env::var_os("ES_BLESS").is_some() {
        std::fs::write(&path, &live).unwrap();
    }
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        file == live,
        "{} differs from the migrated database's functions; rewrite it with ES_BLESS=1 and review the diff",
        path.display()
    );
}
