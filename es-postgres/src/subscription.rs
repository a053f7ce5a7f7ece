//! Catch-up-then-live subscriptions over the global order.

use std::collections::VecDeque;
use std::sync::Arc;

use es_core::store::{EventStream, FeedFilter, FeedStream};
use es_core::{Position, RecordedEvent, StoreError};
use tokio::sync::watch;

use crate::live::ListenerTask;
use crate::store::{Inner, read_all, read_filtered};

struct Cursor {
    inner: Arc<Inner>,
    after: Position,
    buffer: VecDeque<RecordedEvent>,
    wake: watch::Receiver<u64>,
    _listener: Arc<ListenerTask>,
    failed: bool,
}

/// Reads pages after the cursor; when a page comes back short, waits for a wake-up or the poll interval. A corrupt
/// row is an error item in its place, and the feed goes on after it; any other error ends it.
pub(crate) fn subscribe(inner: Arc<Inner>, after: Position) -> EventStream {
    let started = futures::stream::once(async move {
        let (wake, listener) = inner.live.subscribe();
        Cursor {
            inner,
            after,
            buffer: VecDeque::new(),
            wake,
            _listener: listener,
            failed: false,
        }
    });
    Box::pin(futures::StreamExt::flat_map(started, |cursor| {
        futures::stream::unfold(cursor, |mut cursor| async move {
            if cursor.failed {
                return None;
            }
            loop {
                if let Some(event) = cursor.buffer.pop_front() {
                    cursor.after = event.position;
                    return Some((Ok(event), cursor));
                }
                // Mark wake-ups seen before reading, so a commit between the read and the wait is not missed.
                cursor.wake.borrow_and_update();
                let page_size = cursor.inner.page_size;
                match read_all(&cursor.inner, cursor.after, page_size).await {
                    Ok(page) if page.is_empty() => {
                        let interval = cursor.inner.poll_interval;
                        let _ = tokio::time::timeout(interval, cursor.wake.changed()).await;
                    }
                    Ok(page) => cursor.buffer = page.into(),
                    Err(StoreError::Corrupt(corrupt)) => {
                        // A row that does not read back is reported in its place; the feed goes on after it.
                        cursor.after = corrupt.position;
                        return Some((Err(StoreError::Corrupt(corrupt)), cursor));
                    }
                    Err(error) => {
                        cursor.failed = true;
                        return Some((Err(error), cursor));
                    }
                }
            }
        })
    }))
}

/// The filtered feed: a page of the selected events (filtered on the server) as soon as the page read anything, so a
/// reader moves past what it does not want; when nothing new is visible, waits for a wake-up or the poll interval.
pub(crate) fn subscribe_filtered(
    inner: Arc<Inner>,
    after: Position,
    filter: FeedFilter,
) -> FeedStream {
    let started = futures::stream::once(async move {
        let (wake, listener) = inner.live.subscribe();
        (inner, after, wake, listener, false)
    });
    Box::pin(futures::StreamExt::flat_map(started, move |cursor| {
        let filter = filter.clone();
        futures::stream::unfold(
            cursor,
            move |(inner, mut after, mut wake, listener, failed)| {
                let filter = filter.clone();
                async move {
                    if failed {
                        return None;
                    }
                    loop {
                        wake.borrow_and_update();
                        match read_filtered(&inner, after, inner.page_size, &filter).await {
                            Ok(None) => {
                                let _ =
                                    tokio::time::timeout(inner.poll_interval, wake.changed()).await;
                            }
                            Ok(Some(batch)) => {
                                after = batch.through;
                                return Some((Ok(batch), (inner, after, wake, listener, false)));
                            }
                            Err(StoreError::Corrupt(corrupt)) => {
                                after = corrupt.position;
                                let item = Err(StoreError::Corrupt(corrupt));
                                return Some((item, (inner, after, wake, listener, false)));
                            }
                            Err(error) => {
                                return Some((Err(error), (inner, after, wake, listener, true)));
                            }
                        }
                    }
                }
            },
        )
    }))
}
