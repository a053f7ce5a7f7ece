//! Catch-up-then-live subscriptions over the in-memory log.

use std::collections::VecDeque;
use std::sync::Arc;

use es_core::store::EventStream;
use es_core::{Position, RecordedEvent};

use crate::store::Shared;

/// Events read per lock acquisition while catching up.
const PAGE: usize = 512;

struct Cursor {
    shared: Arc<Shared>,
    after: Position,
    buffer: VecDeque<RecordedEvent>,
    head: tokio::sync::watch::Receiver<u64>,
}

pub(crate) fn subscribe(shared: Arc<Shared>, after: Position) -> EventStream {
    let head = shared.head.subscribe();
    let cursor = Cursor {
        shared,
        after,
        buffer: VecDeque::new(),
        head,
    };
    Box::pin(futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.buffer.pop_front() {
                cursor.after = event.position;
                return Some((Ok(event), cursor));
            }
            // Mark the current head as seen before reading, so an append between the read and the wait wakes us.
            cursor.head.borrow_and_update();
            cursor.buffer = cursor.shared.log.read().read_all(cursor.after, PAGE).into();
            if cursor.buffer.is_empty() && cursor.head.changed().await.is_err() {
                return None;
            }
        }
    }))
}
