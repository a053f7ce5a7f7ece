//! The lease that makes one process at a time a projection's active worker: renewed in each batch's
//! transaction, checked before a standby takes over.

use chrono::Utc;
use sqlx::SqliteConnection;

use crate::rows::micros;
use crate::transaction::Failure;

/// Renews `owner`'s lease of `projection` to `expires` in the transaction's first statement, failing it unless the
/// lease is still `owner`'s and not run out: a worker that was paused past its lease commits nothing, and every
/// batch the active worker commits renews its lease (the runner counts a batch as a heartbeat: under steady traffic
/// it sends no other).
pub(super) async fn renew(
    conn: &mut SqliteConnection,
    projection: &str,
    owner: &str,
    expires: i64,
) -> Result<(), Failure> {
    let renewed = sqlx::query(
        "UPDATE projection_leases SET expires_at = ?3 WHERE projection = ?1 AND owner = ?2 AND expires_at > ?4",
    )
    .bind(projection)
    .bind(owner)
    .bind(expires)
    .bind(micros(Utc::now()))
    .execute(&mut *conn)
    .await?;
    match renewed.rows_affected() {
        0 => still_held(conn, projection, owner)
            .await
            .and(Err(Failure::Lost("its lease ran out".to_owned()))),
        _ => Ok(()),
    }
}

/// Fails unless `owner` still holds `projection`'s lease, naming who holds it otherwise.
pub(super) async fn still_held(
    conn: &mut SqliteConnection,
    projection: &str,
    owner: &str,
) -> Result<(), Failure> {
    let holder: Option<(String, i64)> =
        sqlx::query_as("SELECT owner, expires_at FROM projection_leases WHERE projection = ?1")
            .bind(projection)
            .fetch_optional(&mut *conn)
            .await?;
    match holder {
        Some((holder, expires)) if holder == owner && expires > micros(Utc::now()) => Ok(()),
        Some((holder, _)) if holder != owner => {
            Err(Failure::Lost(format!("its lease is held by {holder}")))
        }
        _ => Err(Failure::Lost("its lease ran out".to_owned())),
    }
}
