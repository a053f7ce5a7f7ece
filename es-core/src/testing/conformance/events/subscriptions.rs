//! Subscriptions: catch-up then live, from a position, filtered by category and type.

use futures::StreamExt;
use serde_json::json;

use crate::store::{EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent};

use super::{PATIENCE, all, append, events, stream, v};

/// A subscription returns the stored events first, then events appended after it started, in order.
pub async fn subscribe_all_catches_up_then_goes_live<S: EventStore + Clone + 'static>(store: S) {
    let s = stream("order-1");
    append(&store, &s, ExpectedVersion::NoStream, events(0..3)).await;
    let mut subscription = store.subscribe_all(Position::START);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut subscription).await);
    }
    let writer = {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            for i in 3..8 {
                append(&store, &s, ExpectedVersion::Exact(v(i)), events(i..i + 1)).await;
            }
        })
    };
    for _ in 3..8 {
        seen.push(next(&mut subscription).await);
    }
    writer.await.expect("writer");
    assert_eq!(
        seen.iter().map(|e| e.version.get()).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
}

/// A subscription from a position returns only the events after it.
pub async fn subscribe_all_starts_after_the_given_position<S: EventStore>(store: S) {
    let s = stream("order-1");
    let first = append(&store, &s, ExpectedVersion::NoStream, events(0..2)).await;
    append(&store, &s, ExpectedVersion::Any, events(2..3)).await;
    let mut subscription = store.subscribe_all(first.last_position);
    assert_eq!(next(&mut subscription).await.version, v(3));
}

/// A filtered subscription hands over only the selected events, in global order, each once, and its pages say how
/// far they read: past the events it does not select, up to the last one written, live as well.
pub async fn subscribe_filtered_selects_by_category_and_type_and_moves_past_the_rest<
    S: EventStore + Clone + 'static,
>(
    store: S,
) {
    let typed = |t: &'static str, n: u64| NewEvent::new(t, 1, json!({ "n": n }));
    let mut selected = Vec::new();
    let mut last = Position::START;
    for n in 0..30u64 {
        let (name, t) = match n % 3 {
            0 => ("light-1", "SwitchedOn"),
            1 => ("door-1", "SwitchedOn"),
            _ => ("light-2", "Dimmed"),
        };
        let written = append(
            &store,
            &stream(name),
            ExpectedVersion::Any,
            vec![typed(t, n)],
        )
        .await;
        last = written.last_position;
        if n % 3 == 0 {
            selected.push(written.last_position);
        }
    }
    let filter = crate::store::FeedFilter::all()
        .with_categories(&["light"])
        .only_types(&["SwitchedOn"]);
    let mut feed = store.subscribe_filtered(Position::START, filter.clone());
    let mut seen = Vec::new();
    let mut through = Position::START;
    while through < last {
        let batch = next_batch(&mut feed).await;
        assert!(batch.through > through, "a page must move on");
        assert!(batch.events.iter().all(|e| e.position <= batch.through));
        through = batch.through;
        seen.extend(batch.events.iter().map(|e| e.position));
    }
    assert_eq!(seen, selected);
    // Live: an unselected event moves the feed on, a selected one comes through.
    let door = append(
        &store,
        &stream("door-1"),
        ExpectedVersion::Any,
        vec![typed("SwitchedOn", 99)],
    )
    .await;
    let light = append(
        &store,
        &stream("light-3"),
        ExpectedVersion::Any,
        vec![typed("SwitchedOn", 100)],
    )
    .await;
    let mut live = Vec::new();
    while through < light.last_position {
        let batch = next_batch(&mut feed).await;
        through = batch.through;
        live.extend(batch.events.iter().map(|e| e.position));
    }
    assert!(door.last_position < light.last_position);
    assert_eq!(live, vec![light.last_position]);
    // From a position: only what follows it.
    let mut later = store.subscribe_filtered(selected[5], filter);
    assert_eq!(next_batch(&mut later).await.events[0].position, selected[6]);
    // By partition: each event in the one partition `partition_of` names, every event in one of them.
    for name in ["p-1", "p-2", "p-3", "p-4", "p-5", "p-6", "p-7", "p-8"] {
        last = append(
            &store,
            &stream(name),
            ExpectedVersion::Any,
            vec![typed("Dimmed", 0)],
        )
        .await
        .last_position;
    }
    let mut partitioned = 0;
    for partition in 0..4 {
        let mut feed = store.subscribe_filtered(
            Position::START,
            crate::store::FeedFilter::all().partition(partition, 4),
        );
        let mut through = Position::START;
        while through < last {
            let batch = next_batch(&mut feed).await;
            through = batch.through;
            for event in &batch.events {
                assert_eq!(
                    crate::store::partition_of(event.stream_id.as_str(), 4),
                    partition
                );
                partitioned += 1;
            }
        }
    }
    assert_eq!(partitioned, all(&store).await.len());
}

pub(super) async fn next_batch(feed: &mut crate::store::FeedStream) -> crate::store::FeedBatch {
    match tokio::time::timeout(PATIENCE, feed.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(error))) => panic!("filtered subscription failed: {error}"),
        Ok(None) => panic!("filtered subscription ended"),
        Err(_) => panic!("no page from the filtered subscription within {PATIENCE:?}"),
    }
}

pub(super) async fn next(subscription: &mut crate::store::EventStream) -> RecordedEvent {
    match tokio::time::timeout(PATIENCE, subscription.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("subscription failed: {error}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no event from the subscription within {PATIENCE:?}"),
    }
}
