//! Group commit: appends from concurrent tasks that arrive while earlier ones are on their way go to the server
//! together, in one round trip and one transaction, over connections of the store's own (no pool: no ping before
//! or after each use).
//!
//! An append joins a queue. When fewer than `max_in_flight` groups are being written, it starts a writer task at
//! once (an idle store adds no delay); otherwise the next writer to finish takes it, with everything else queued
//! by then. A group never holds two appends to the same stream (the later one waits for the next group, so a
//! stream's appends keep their order), and each append's outcome is decided on its own stream alone: a conflict,
//! a reused id or a refused event in one never fails the others. When a whole call fails (a bad payload the
//! server refuses, a broken connection), its appends are written again one by one, so each gets exactly the
//! outcome it would have had alone; appends are idempotent by event id, so a group that did commit before its
//! connection broke comes back as `replayed`.
//!
//! A group only tries its streams' locks. An append whose stream another transaction holds (a writer stopped half
//! way through its append) is left out of the group ('busy') and written on the side, alone, waiting for the stream
//! at most the stream lock timeout ([`StoreError::StreamLocked`] past it): a held stream never holds up the others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use es_core::store::AppendResult;
use es_core::{StoreError, StreamId};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::oneshot;

use crate::append::{self, AppendSql, Outcome, Request};
use crate::error::connection_lost;

/// The most appends one call carries.
const MAX_GROUP_APPENDS: usize = 64;
/// The most events one call carries (a larger single append goes alone).
const MAX_GROUP_EVENTS: usize = 4_096;

/// The most scheduler turns a writer waits for the callers of its last group to come back.
const MAX_GATHER_TURNS: usize = 16;

type Reply = oneshot::Sender<Result<AppendResult, StoreError>>;

/// The queue of appends and the connections that write them.
pub(crate) struct Committer {
    sql: AppendSql,
    options: PgConnectOptions,
    /// How long opening a connection may take (the pool's acquire timeout).
    connect_timeout: Duration,
    max_in_flight: usize,
    /// How long an append waits for a stream another transaction holds.
    lock_wait: Duration,
    queue: parking_lot::Mutex<Queue>,
    /// Appends whose stream another transaction held, per stream, in order; an entry while its waiter runs.
    waiting: parking_lot::Mutex<HashMap<StreamId, VecDeque<(Request, Reply)>>>,
    /// Connections not in use by a writer; a writer opens one when none is idle.
    idle: parking_lot::Mutex<Vec<PgConnection>>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<(Request, Reply)>,
    /// Writer tasks running.
    writers: usize,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl Committer {
    /// How long an append waits for a stream another transaction holds.
    pub(crate) fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    pub(crate) fn new(
        sql: AppendSql,
        options: PgConnectOptions,
        connect_timeout: Duration,
        max_in_flight: usize,
        lock_wait: Duration,
    ) -> Self {
        Self {
            sql,
            options,
            connect_timeout,
            max_in_flight: max_in_flight.max(1),
            lock_wait,
            queue: parking_lot::Mutex::new(Queue::default()),
            waiting: parking_lot::Mutex::new(HashMap::new()),
            idle: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Writes `request`, alone or with others, and returns its own outcome.
    pub(crate) async fn append(
        self: &Arc<Self>,
        request: Request,
    ) -> Result<AppendResult, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let start_writer = {
            let mut queue = self.queue.lock();
            queue.pending.push_back((request, reply));
            let start = queue.writers < self.max_in_flight;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            // A task of its own, so that a caller that gives up waiting cannot strand the group's other appends.
            tokio::spawn(Arc::clone(self).write());
        }
        outcome.await.map_err(|_| StoreError::Backend {
            operation: "append",
            source: "the append's writer task ended without an outcome (runtime shutting down?)"
                .into(),
        })?
    }

    /// A writer: takes groups off the queue until it is empty.
    async fn write(self: Arc<Self>) {
        // Appends woken at the same moment as the one that started this writer join its first group.
        tokio::task::yield_now().await;
        loop {
            let group = {
                let mut queue = self.queue.lock();
                if queue.pending.is_empty() {
                    queue.writers -= 1;
                    return;
                }
                take_group(&mut queue.pending)
            };
            let callers = group.len();
            self.write_group(group).await;
            // The callers just answered are the likeliest next appends: give them a moment (a few turns of the
            // scheduler, no timer) to come back and share the next group. A lone append waits for nobody.
            for _ in 1..callers.min(MAX_GATHER_TURNS) {
                if self.queue.lock().pending.len() >= callers {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }

    async fn write_group(self: &Arc<Self>, group: Vec<(Request, Reply)>) {
        let (requests, replies): (Vec<Request>, Vec<Reply>) = group.into_iter().unzip();
        let outcomes = match self.call(Call::Group(&requests)).await {
            Ok(outcomes) => outcomes,
            Err(error) if requests.len() == 1 => {
                vec![Outcome::Done(Err(append::failed(error, &requests[0])))]
            }
            Err(error) => {
                tracing::debug!(%error, appends = requests.len(), "group append failed; writing its appends one by one");
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in &requests {
                    outcomes.push(
                        match self.call(Call::Group(std::slice::from_ref(request))).await {
                            Ok(outcome) => Outcome::single(outcome),
                            Err(error) => Outcome::Done(Err(append::failed(error, request))),
                        },
                    );
                }
                outcomes
            }
        };
        for ((request, reply), outcome) in requests.into_iter().zip(replies).zip(outcomes) {
            match outcome {
                // The caller may have stopped waiting; its append stands either way.
                Outcome::Done(outcome) => {
                    let _ = reply.send(outcome);
                }
                // Another transaction holds the stream: wait for it on the side, so that this writer goes on with
                // the other streams' appends.
                Outcome::Busy => self.wait_for_stream(request, reply),
            }
        }
    }

    /// Queues an append whose stream another transaction holds behind the stream's earlier busy appends, and starts
    /// the stream's waiter when it has none: one connection per held stream, whatever the number of its appends.
    fn wait_for_stream(self: &Arc<Self>, request: Request, reply: Reply) {
        let stream = request.stream.clone();
        let start = {
            let mut waiting = self.waiting.lock();
            let start = !waiting.contains_key(&stream);
            waiting
                .entry(stream.clone())
                .or_default()
                .push_back((request, reply));
            start
        };
        if start {
            tokio::spawn(Arc::clone(self).write_waiting(stream));
        }
    }

    /// Writes `stream`'s busy appends one by one, in order, each alone and waiting for the stream at most the stream
    /// lock timeout, on a connection that no group waits for. The stream's entry stays while this runs (so later busy
    /// appends queue here instead of starting another waiter) and goes when its queue is empty.
    async fn write_waiting(self: Arc<Self>, stream: StreamId) {
        tracing::debug!(%stream, "stream held by another transaction; waiting for it");
        loop {
            let next = {
                let mut waiting = self.waiting.lock();
                let next = waiting.get_mut(&stream).and_then(VecDeque::pop_front);
                if next.is_none() {
                    waiting.remove(&stream);
                }
                next
            };
            let Some((request, reply)) = next else {
                return;
            };
            let outcome = match self
                .call(Call::Waiting(&request))
                .await
                .map(Outcome::single)
            {
                Ok(Outcome::Done(outcome)) => outcome,
                // append_waiting holds the stream's lock when it tries it: never busy.
                Ok(Outcome::Busy) => Err(StoreError::StreamLocked {
                    stream: request.stream.clone(),
                    waited: self.lock_wait,
                }),
                Err(error) => Err(append::failed(error, &request)),
            };
            let _ = reply.send(outcome);
        }
    }

    /// One call on an idle connection (opened if none is idle). A connection that failed is closed, not reused;
    /// when a reused one turns out lost (the server restarted since its last use), the call is made once more on a
    /// new connection: appends are idempotent by event id, so a call that did commit comes back as `replayed`.
    async fn call(&self, call: Call<'_>) -> Result<Vec<Outcome>, sqlx::Error> {
        let idle = self.idle.lock().pop();
        let reused = idle.is_some();
        let result = self.call_on(idle, call).await;
        match result {
            Err(error) if reused && connection_lost(&error) => {
                tracing::debug!(%error, "append connection lost; writing again on a new one");
                self.call_on(None, call).await
            }
            other => other,
        }
    }

    async fn call_on(
        &self,
        conn: Option<PgConnection>,
        call: Call<'_>,
    ) -> Result<Vec<Outcome>, sqlx::Error> {
        let mut conn = match conn {
            Some(conn) => conn,
            None => tokio::time::timeout(
                self.connect_timeout,
                PgConnection::connect_with(&self.options),
            )
            .await
            .map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "opening a connection for appends timed out",
                ))
            })??,
        };
        let result = match call {
            Call::Group(requests) => append::call(&mut conn, &self.sql, requests).await,
            Call::Waiting(request) => {
                append::call_waiting(&mut conn, &self.sql, request, self.lock_wait).await
            }
        };
        match &result {
            Err(error) if connection_lost(error) || !matches!(error, sqlx::Error::Database(_)) => {
                drop(conn)
            }
            _ => self.idle.lock().push(conn),
        }
        result
    }
}

/// What one call on an append connection writes.
#[derive(Clone, Copy)]
enum Call<'a> {
    /// Appends to distinct streams, trying each stream's lock (a busy one is left out).
    Group(&'a [Request]),
    /// One append whose stream was busy, waiting for it within the bound.
    Waiting(&'a Request),
}

/// The next group: queued appends in order, at most one per stream (later ones stay queued, in order), within
/// the size limits, and always at least the first.
fn take_group(pending: &mut VecDeque<(Request, Reply)>) -> Vec<(Request, Reply)> {
    let mut group = Vec::new();
    let mut streams = HashSet::new();
    let mut events = 0;
    let mut rest = VecDeque::new();
    while let Some(item) = pending.pop_front() {
        let size = item.0.events.len();
        let fits = group.is_empty()
            || (group.len() < MAX_GROUP_APPENDS && events + size <= MAX_GROUP_EVENTS);
        if !fits {
            pending.push_front(item);
            break;
        }
        if streams.insert(item.0.stream.clone()) {
            events += size;
            group.push(item);
        } else {
            rest.push_back(item);
        }
    }
    while let Some(item) = rest.pop_back() {
        pending.push_front(item);
    }
    group
}
