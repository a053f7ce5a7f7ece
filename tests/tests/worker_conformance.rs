//! The exactly-once worker's conformance suite (see `tests::worker_suite`) on PostgreSQL and on SQLite: the same
//! cases — SIGKILL mid-batch, takeover by a standby, a holder paused past its lease, a rebuild, a poison event —
//! against both stores' `TransactionalWorker`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use es_core::projection::ProjectionOptions;
use es_postgres::{PgEventStore, PgProjectionWorker};
use es_sqlite::{SqliteEventStore, SqliteProjectionWorker};
use tests::child::ChildProcess;
use tests::ledger::{PgLedger, Totals};
use tests::sqlite_ledger::SqliteLedger;
use tests::worker_suite::{LEASE_MS, WorkerSuite};
use tests::{fresh_sqlite_path, pg_store, worker_conformance_tests};

struct Postgres {
    store: PgEventStore,
    ledger: PgLedger,
}

#[async_trait]
impl WorkerSuite for Postgres {
    type Store = PgEventStore;
    type Worker = PgProjectionWorker<PgLedger>;
    // The server ends a silent holder's session after the lease, whatever it was doing.
    const TAKES_OVER_FROM_ANY_PAUSE: bool = true;

    async fn fresh() -> Self {
        let store = pg_store().await;
        let ledger = PgLedger::create(&store).await;
        Self { store, ledger }
    }

    fn store(&self) -> &PgEventStore {
        &self.store
    }

    fn spawn(&self, expected: usize, pause_ms: u64) -> ChildProcess {
        ChildProcess::spawn(
            env!("CARGO_BIN_EXE_ledger_worker"),
            &[
                self.store.schema().as_str(),
                &expected.to_string(),
                &pause_ms.to_string(),
                &LEASE_MS.to_string(),
            ],
        )
    }

    fn worker(&self, options: ProjectionOptions, poisoned: bool) -> Self::Worker {
        self.ledger.poisoned.store(poisoned, Ordering::SeqCst);
        PgProjectionWorker::new(&self.store, self.ledger.clone(), options)
            .standby_poll(Duration::from_millis(100))
    }

    async fn applied(&self) -> i64 {
        self.ledger.applied(&self.store).await
    }

    async fn totals(&self) -> Totals {
        self.ledger.totals(&self.store).await
    }
}

struct Sqlite {
    file: std::path::PathBuf,
    store: SqliteEventStore,
    ledger: SqliteLedger,
}

#[async_trait]
impl WorkerSuite for Sqlite {
    type Store = SqliteEventStore;
    type Worker = SqliteProjectionWorker<SqliteLedger>;
    const TAKES_OVER_FROM_ANY_PAUSE: bool = false;

    async fn fresh() -> Self {
        let file = fresh_sqlite_path();
        let store = SqliteEventStore::open(&file).await.unwrap();
        let ledger = SqliteLedger::create(&store).await;
        Self {
            file,
            store,
            ledger,
        }
    }

    fn store(&self) -> &SqliteEventStore {
        &self.store
    }

    fn spawn(&self, expected: usize, pause_ms: u64) -> ChildProcess {
        ChildProcess::spawn(
            env!("CARGO_BIN_EXE_sqlite_worker"),
            &[
                "project",
                &self.file.display().to_string(),
                &expected.to_string(),
                &pause_ms.to_string(),
                &LEASE_MS.to_string(),
            ],
        )
    }

    fn worker(&self, options: ProjectionOptions, poisoned: bool) -> Self::Worker {
        self.ledger.poisoned.store(poisoned, Ordering::SeqCst);
        SqliteProjectionWorker::new(&self.store, self.ledger.clone(), options)
            .standby_poll(Duration::from_millis(100))
    }

    async fn applied(&self) -> i64 {
        self.ledger.applied(&self.store).await
    }

    async fn totals(&self) -> Totals {
        self.ledger.totals(&self.store).await
    }
}

mod postgres {
    use super::*;
    worker_conformance_tests!(Postgres);
}

mod sqlite {
    use super::*;
    worker_conformance_tests!(Sqlite);
}
