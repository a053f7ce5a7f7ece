//! Live subscriptions: woken at once by this process's appends, and by other processes' appends through a cheap
//! poll of `PRAGMA data_version`.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use es_core::store::EventStream;
use es_core::{EventStore, Position, RecordedEvent, StoreError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::SqliteEventStore;
use crate::store::Inner;

/// Events read per query while catching up.
const PAGE: usize = 512;

struct Cursor {
    store: SqliteEventStore,
    after: Position,
    buffer: VecDeque<RecordedEvent>,
    head: tokio::sync::watch::Receiver<u64>,
}

/// Every event after `after`: those stored now, then new ones as they are committed.
pub(crate) fn subscribe(store: SqliteEventStore, after: Position) -> EventStream {
    let head = store.inner.head.subscribe();
    let cursor = Cursor {
        store,
        after,
        buffer: VecDeque::new(),
        head,
    };
    Box::pin(futures::stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                cursor.after = event.position;
                return Some((Ok(event), Some(cursor)));
            }
            // Mark the head seen before reading, so a commit between the read and the wait wakes us.
            cursor.head.borrow_and_update();
            match cursor.store.read_all(cursor.after, PAGE).await {
                Ok(page) => cursor.buffer = page.into(),
                Err(StoreError::Corrupt(corrupt)) => {
                    // A row that does not read back is reported in its place; the feed goes on after it.
                    cursor.after = corrupt.position;
                    return Some((Err(StoreError::Corrupt(corrupt)), Some(cursor)));
                }
                // Any other failure ends the feed, as on PostgreSQL: the subscriber starts a new one from its
                // checkpoint.
                Err(error) => return Some((Err(error), None)),
            }
            if cursor.buffer.is_empty() && cursor.head.changed().await.is_err() {
                return None;
            }
        }
    }))
}

/// Polls `PRAGMA data_version` on a connection of its own every `every`: it changes when another connection
/// (another process) committed. Then reads the head and wakes this process's subscribers. Ends with the store.
pub(crate) async fn watch_other_processes(
    inner: Weak<Inner>,
    options: SqliteConnectOptions,
    every: Duration,
) {
    let mut conn = None;
    let mut seen: Option<i64> = None;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            if let Some(conn) = conn.take() {
                let _ = sqlx::SqliteConnection::close(conn).await;
            }
            return;
        };
        if conn.is_none() {
            conn = options.connect().await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let version: Result<i64, _> = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *c)
            .await;
        let Ok(version) = version else {
            conn = None;
            continue;
        };
        if seen == Some(version) {
            continue;
        }
        seen = Some(version);
        let head: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT max(global_position) FROM events")
                .fetch_one(&mut *c)
                .await;
        if let Ok(Some(head)) = head {
            advance(&inner.head, u64::try_from(head).unwrap_or(0));
        }
    }
}

/// Moves the known head to `to` if that is newer, waking the subscribers.
pub(crate) fn advance(head: &tokio::sync::watch::Sender<u64>, to: u64) {
    head.send_if_modified(|known| {
        let newer = to > *known;
        if newer {
            *known = to;
        }
        newer
    });
}
