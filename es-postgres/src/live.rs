//! Wake-ups for live subscriptions: in-process after each local commit, `LISTEN`/`NOTIFY` across processes.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The shortest time between two notifications from one store: bounds their cost under load, and adds at most
/// this much to the latency of subscribers in other processes.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(2);

/// The wake-up machinery of one store.
pub(crate) struct Live {
    /// Bumped after each local commit and each notification; subscriptions wait on it.
    wake: Arc<watch::Sender<u64>>,
    /// To the notifier task; a full channel means a notification is already due.
    notify: mpsc::Sender<()>,
    pool: PgPool,
    channel: String,
    /// The listener shared by this store's subscriptions; it stops when the last of them is dropped.
    listener: Mutex<Weak<ListenerTask>>,
}

/// The listener task, aborted on drop.
pub(crate) struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Live {
    /// Starts the notifier task on the current Tokio runtime; `None` outside one.
    pub(crate) fn start(pool: PgPool, channel: String) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (notify, requests) = mpsc::channel(1);
        runtime.spawn(notifier(pool.clone(), channel.clone(), requests));
        Some(Self {
            wake: Arc::new(watch::Sender::new(0)),
            notify,
            pool,
            channel,
            listener: Mutex::new(Weak::new()),
        })
    }

    /// Called after an append committed: wake local subscriptions now, and the others through the notifier.
    pub(crate) fn committed(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        // Full: a notification is already queued and will cover this commit too.
        let _ = self.notify.try_send(());
    }

    /// A receiver of wake-ups, and a handle that keeps the shared listener running while held.
    pub(crate) fn subscribe(&self) -> (watch::Receiver<u64>, Arc<ListenerTask>) {
        let mut slot = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let task = slot.upgrade().unwrap_or_else(|| {
            let task = Arc::new(ListenerTask(tokio::spawn(listen(
                self.pool.clone(),
                self.channel.clone(),
                Arc::clone(&self.wake),
            ))));
            *slot = Arc::downgrade(&task);
            task
        });
        (self.wake.subscribe(), task)
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// Sends one empty notification per request, after the commit it follows and outside any transaction (a NOTIFY
/// inside the append's transaction would take a cluster-wide lock until commit). Requests that arrive while one
/// is in flight collapse into one more.
async fn notifier(pool: PgPool, channel: String, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            tracing::warn!(%channel, %error, "pg_notify failed; remote subscribers will poll");
        }
        // Commits in the next moment share one notification: under load, at most one per interval.
        tokio::time::sleep(NOTIFY_INTERVAL).await;
    }
}

/// Turns notifications from other processes into wake-ups. Reconnects on failure, and wakes after each
/// (re)connect since notifications sent while disconnected are lost.
async fn listen(pool: PgPool, channel: String, wake: Arc<watch::Sender<u64>>) {
    let bump = || wake.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%channel, %error, "LISTEN connection failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(&channel).await {
            tracing::warn!(%channel, %error, "LISTEN failed; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        bump();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(),
                // The connection dropped; `try_recv` reconnects on the next call.
                Ok(None) => bump(),
                Err(error) => {
                    tracing::warn!(%channel, %error, "LISTEN connection lost; reconnecting in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
