//! The repository's aggregate cache: per stream, the state a command last decided on and its version, behind a
//! lock that makes this process's commands on one stream take turns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::aggregate::Loaded;
use crate::store::StreamId;

/// One stream's place in the cache. Commands on the stream hold `entry` from load to append: they queue here
/// instead of racing each other to the store.
pub(crate) struct Slot<A> {
    pub(crate) entry: tokio::sync::Mutex<Option<Loaded<A>>>,
    last_used: AtomicU64,
}

/// A bounded map of slots. Past `capacity` streams, the least recently used idle slots are dropped (in batches of
/// an eighth, so the scan is paid once per many insertions); slots in use are never dropped, so the queue of a
/// busy stream stays one queue. With capacity 0 no state is kept, but commands still queue per stream.
pub(crate) struct AggregateCache<A> {
    capacity: usize,
    slots: parking_lot::Mutex<HashMap<StreamId, Arc<Slot<A>>>>,
    clock: AtomicU64,
}

impl<A> std::fmt::Debug for AggregateCache<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateCache")
            .field("capacity", &self.capacity)
            .field("streams", &self.slots.lock().len())
            .finish()
    }
}

impl<A> AggregateCache<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            slots: parking_lot::Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
        }
    }

    /// Whether states are kept at all.
    pub(crate) fn keeps_state(&self) -> bool {
        self.capacity > 0
    }

    /// The slot of `stream`, made if missing.
    pub(crate) fn slot(&self, stream: &StreamId) -> Arc<Slot<A>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(stream) {
            slot.last_used.store(now, Ordering::Relaxed);
            return Arc::clone(slot);
        }
        if slots.len() >= self.capacity.max(1) {
            evict(&mut slots, self.capacity - self.capacity / 8);
        }
        let slot = Arc::new(Slot {
            entry: tokio::sync::Mutex::new(None),
            last_used: AtomicU64::new(now),
        });
        slots.insert(stream.clone(), Arc::clone(&slot));
        slot
    }

    /// The cached state of `stream`, if any and if no command holds it right now.
    pub(crate) fn peek(&self, stream: &StreamId) -> Option<Loaded<A>>
    where
        A: Clone,
    {
        let slot = self.slots.lock().get(stream).map(Arc::clone)?;
        let entry = slot.entry.try_lock().ok()?;
        entry.clone()
    }

    /// How many streams have a slot (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

/// Drops idle slots, least recently used first, until at most `keep` remain (or only busy ones do).
fn evict<A>(slots: &mut HashMap<StreamId, Arc<Slot<A>>>, keep: usize) {
    let mut idle: Vec<(u64, StreamId)> = slots
        .iter()
        .filter(|(_, slot)| Arc::strong_count(slot) == 1)
        .map(|(stream, slot)| (slot.last_used.load(Ordering::Relaxed), stream.clone()))
        .collect();
    let excess = slots.len().saturating_sub(keep).min(idle.len());
    if excess == 0 {
        return;
    }
    if excess < idle.len() {
        idle.select_nth_unstable(excess - 1);
    }
    for (_, stream) in idle.into_iter().take(excess) {
        slots.remove(&stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: usize) -> StreamId {
        StreamId::for_aggregate("s", &n.to_string()).unwrap()
    }

    #[test]
    fn stays_bounded_and_drops_the_least_recently_used_first() {
        let cache = AggregateCache::<u64>::new(16);
        for n in 0..1_000 {
            drop(cache.slot(&stream(n)));
            drop(cache.slot(&stream(0))); // stream 0 stays in use, so it stays
        }
        assert!(cache.len() <= 16, "{}", cache.len());
        assert!(cache.slots.lock().contains_key(&stream(0)));
        assert!(cache.slots.lock().contains_key(&stream(999)));
    }

    #[test]
    fn never_drops_a_slot_in_use() {
        let cache = AggregateCache::<u64>::new(0);
        let held: Vec<_> = (0..10).map(|n| cache.slot(&stream(n))).collect();
        drop(cache.slot(&stream(100)));
        for (n, slot) in held.iter().enumerate() {
            assert!(Arc::ptr_eq(slot, &cache.slot(&stream(n))));
        }
    }
}
