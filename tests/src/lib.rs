//! Support for the integration tests in `tests/tests/`: PostgreSQL test stores, each in a schema of its own.
//!
//! These helpers exist to fail tests loudly, so they panic with a message that says what to do.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use es_postgres::PgEventStore;

/// The database the tests use: `DATABASE_URL`, else the local server on 127.0.0.1:5432.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".to_owned())
}

/// The prefix of this run's schemas: `es_test_<run>_`. `scripts/test` sets `ES_TEST_RUN` and drops the schemas
/// of its run when it ends; without it, each test process picks its own.
pub fn schema_prefix() -> String {
    let run = std::env::var("ES_TEST_RUN").unwrap_or_else(|_| std::process::id().to_string());
    format!("es_test_{run}_")
}

/// A fresh schema name for one test: unique within the run, and across the test binaries of one run.
pub fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}{}_{}",
        schema_prefix(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        &uuid[..8]
    )
}

/// A migrated store in a fresh schema. Panics, naming the URL, when PostgreSQL cannot be reached: the suite
/// must fail, not skip, without its database.
pub async fn pg_store() -> PgEventStore {
    pg_store_with(PgEventStore::builder()).await
}

/// Like [`pg_store`], with the builder's other settings.
pub async fn pg_store_with(builder: es_postgres::PgEventStoreBuilder) -> PgEventStore {
    let url = database_url();
    let store = builder
        .schema(fresh_schema())
        .max_connections(12)
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to PostgreSQL at {url}: {e}. Start it, or set DATABASE_URL; scripts/test does both")
        });
    store.migrate().await.expect("migrate a fresh schema");
    store
}
