//! The single-instance claim of a [`PgProjectionWorker`](super::PgProjectionWorker): a session advisory lock taken
//! on the worker's dedicated connection, so losing the connection releases it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use es_core::projection::Holder;
use sqlx::{Connection, PgConnection};

use super::worker::connect;
use crate::PgEventStore;

/// The advisory lock of one projection.
#[derive(Debug)]
pub(crate) struct Lock {
    key: String,
}

impl Lock {
    /// The lock of projection `name` in `store`'s schema.
    pub(crate) fn new(store: &PgEventStore, name: &str) -> Self {
        Self {
            key: format!("{}{name}", store.inner.sql.projection_lock_prefix),
        }
    }

    /// Opens a connection of its own and tries the lock on it, setting the lease's timeouts in the same round trip.
    pub(crate) async fn take(
        &self,
        store: &PgEventStore,
        lease: Duration,
    ) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = connect(store).await?;
        let locked: bool = sqlx::query_scalar(LOCK)
            .bind(&self.key)
            .bind(format!("{}ms", lease.as_millis()))
            .fetch_one(&mut conn)
            .await?;
        if locked {
            Ok(Some(conn))
        } else {
            conn.close().await?;
            Ok(None)
        }
    }

    /// Who holds the lock, as the server shows it.
    pub(crate) async fn holder(&self, store: &PgEventStore) -> Result<Option<Holder>, sqlx::Error> {
        let row: Option<HolderRow> = sqlx::query_as(HOLDER)
            .bind(&self.key)
            .fetch_optional(&store.inner.pool)
            .await?;
        Ok(
            row.map(|(pid, application_name, client_addr, since)| Holder {
                pid,
                application_name: application_name.filter(|name| !name.is_empty()),
                client_addr,
                since,
            }),
        )
    }
}

/// A lock holder's pid, application name, client address and connection start.
type HolderRow = (
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// Takes the projection's lock; on the lock connection, the server ends the session once it has been silent for
/// the lease (PostgreSQL 14 added `idle_session_timeout`; 13 keeps only the idle-in-transaction bound).
const LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0)), \
     set_config('idle_in_transaction_session_timeout', $2, false), \
     CASE WHEN current_setting('server_version_num')::int >= 140000 \
          THEN set_config('idle_session_timeout', $2, false) END";

/// The backend holding the projection's lock: advisory locks on a bigint key show its high half in `classid`
/// and its low half in `objid`.
const HOLDER: &str = "WITH k AS (SELECT hashtextextended($1, 0) AS key) \
     SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start \
     FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
       AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295 \
     LIMIT 1";
