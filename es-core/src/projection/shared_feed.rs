//! One feed per runner: a single reader of the global stream whose pages every projection task that has caught up
//! takes from a bounded broadcast, instead of each task reading the log on its own. A task that falls more than
//! the buffer behind is dropped from it and reads on its own (filtered on the server) until it has caught up again,
//! so a slow projection never holds the others back and memory stays bounded.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::store::{CorruptEvent, FeedBatch, FeedFilter};
use crate::store::{EventStore, Position, StoreError};

/// How many pages the feed keeps for tasks that are behind (a page holds at most the store's page size of events).
pub(crate) const FEED_PAGES: usize = 16;

/// The wait before the feed reads again after the store failed.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What the feed hands out.
#[derive(Debug)]
pub(crate) enum FeedItem {
    /// A page of the events some task selects.
    Batch(FeedBatch),
    /// A stored event that does not read back, in its place.
    Corrupt(Box<CorruptEvent>),
}

/// The shared reader of one runner.
pub(crate) struct Feed {
    /// The position the feed has handed out through, updated with each send under the same lock, so a task that
    /// joins knows the first page it receives starts right after it.
    through: Mutex<Position>,
    pages: broadcast::Sender<Arc<FeedItem>>,
    progress: watch::Sender<Position>,
}

impl Feed {
    /// Starts reading `store` after its head, selecting what `filter` selects; stops on `shutdown`.
    pub(crate) fn start(
        store: Arc<dyn EventStore>,
        filter: FeedFilter,
        mut shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let (pages, _) = broadcast::channel(FEED_PAGES);
        let (progress, _) = watch::channel(Position::START);
        let feed = Arc::new(Self {
            // Nothing can join before the feed knows where it starts.
            through: Mutex::new(Position::new(u64::MAX, u64::MAX)),
            pages,
            progress,
        });
        let reader = Arc::clone(&feed);
        tokio::spawn(async move {
            let stop = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            tokio::select! {
                () = stop => {}
                () = reader.read(store, filter) => {}
            }
        });
        feed
    }

    /// Reads pages and hands them out, for as long as the runner runs; after a store failure, reads again from
    /// where it was.
    async fn read(&self, store: Arc<dyn EventStore>, filter: FeedFilter) {
        let mut after = loop {
            match store.head().await {
                Ok(head) => break head.unwrap_or(Position::START),
                Err(error) => {
                    tracing::warn!(%error, "the projection feed cannot read the head; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        };
        *self.through.lock() = after;
        loop {
            let mut pages = store.subscribe_filtered(after, filter.clone());
            while let Some(item) = pages.next().await {
                let (item, through) = match item {
                    Ok(batch) => {
                        let through = batch.through;
                        (FeedItem::Batch(batch), through)
                    }
                    Err(StoreError::Corrupt(corrupt)) => {
                        let through = corrupt.position;
                        (FeedItem::Corrupt(corrupt), through)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the projection feed failed; reading again");
                        break;
                    }
                };
                {
                    let mut handed = self.through.lock();
                    let _ = self.pages.send(Arc::new(item));
                    *handed = through;
                }
                after = through;
                self.progress.send_replace(through);
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// A receiver of the pages after `position`, when the feed has not handed out anything past it yet (a task at
    /// `position` then misses nothing); `None` while the task is behind the feed.
    pub(crate) fn join(
        &self,
        position: Option<Position>,
    ) -> Option<broadcast::Receiver<Arc<FeedItem>>> {
        let through = self.through.lock();
        (*through <= position.unwrap_or(Position::START)).then(|| self.pages.subscribe())
    }

    /// Changes whenever the feed hands out a page.
    pub(crate) fn progress(&self) -> watch::Receiver<Position> {
        self.progress.subscribe()
    }
}
