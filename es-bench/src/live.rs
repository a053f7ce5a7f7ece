//! Append → delivery latency of live feeds.

use std::time::{Duration, Instant};

use es_core::store::EventStream;
use es_core::{EventId, EventStore, ExpectedVersion, NewEvent, StreamId};
use futures::StreamExt;
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// For each of `feeds`, the time from the start of each of `samples` appends of `event` (a fresh id each time, to
/// a new stream) to `store` to the feed's delivery of it. Each feed is read by a task of its own that is already waiting when the append starts, so the figure is
/// the feed's wake-up path (in process, NOTIFY, a poll), not a read made right after the append returned.
///
/// Between appends it idles 5 ms plus a share of `spread` that varies from sample to sample, so that appends do not
/// fall into step with a feed that polls (pass its poll interval; zero for feeds woken by notifications).
pub(crate) async fn delivery_latency<S: EventStore>(
    store: &S,
    event: &NewEvent,
    feeds: Vec<EventStream>,
    samples: usize,
    spread: Duration,
) -> Result<Vec<Vec<Duration>>, Error> {
    let mut arrivals: Vec<mpsc::UnboundedReceiver<Instant>> = feeds
        .into_iter()
        .map(|mut feed| {
            let (send, arrivals) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(Ok(_)) = feed.next().await {
                    if send.send(Instant::now()).is_err() {
                        break;
                    }
                }
            });
            arrivals
        })
        .collect();
    // The readers have reached the head and wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = vec![Vec::with_capacity(samples); arrivals.len()];
    for i in 0..samples {
        let stream = StreamId::new(format!("live-{i}"))?;
        let event = event.clone().with_event_id(EventId::new());
        let started = Instant::now();
        store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await?;
        for (feed, out) in arrivals.iter_mut().zip(&mut out) {
            let arrived = tokio::time::timeout(Duration::from_secs(30), feed.recv())
                .await
                .map_err(|_| "a live feed delivered nothing within 30 s")?
                .ok_or("a live feed ended")?;
            out.push(arrived.saturating_duration_since(started));
        }
        // Idle between appends: the target is latency when quiet.
        let share = u32::try_from(i * 37 % 100).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(5) + spread * share / 100).await;
    }
    Ok(out)
}
