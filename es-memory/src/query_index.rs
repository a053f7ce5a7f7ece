//! Which events a query can match, by tag and by type: a query read or an append condition looks at those, not at
//! the whole log.

use std::collections::HashMap;

use es_core::RecordedEvent;
use es_core::store::{Query, QueryItem};

/// Positions in the log (0-based) of the events carrying each tag and of each type, in order.
#[derive(Debug, Default)]
pub(crate) struct QueryIndex {
    by_tag: HashMap<String, Vec<usize>>,
    by_type: HashMap<String, Vec<usize>>,
}

impl QueryIndex {
    /// Records the event at `index`.
    pub(crate) fn add(&mut self, index: usize, event: &RecordedEvent) {
        for tag in &event.tags {
            push(&mut self.by_tag, tag, index);
        }
        push(&mut self.by_type, &event.event_type, index);
    }

    /// The indexes from `from` on of the events matching `query`, in order.
    pub(crate) fn matching(
        &self,
        query: &Query,
        from: usize,
        events: &[RecordedEvent],
    ) -> Vec<usize> {
        let mut found: Vec<usize> = query
            .items()
            .iter()
            .flat_map(|item| self.candidates(item, from, events.len()))
            .filter(|&index| {
                events
                    .get(index)
                    .is_some_and(|event| query.matches_event(event))
            })
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The indexes from `from` on that `item` may match: those of its rarest tag, else of its types, else all.
    fn candidates(&self, item: &QueryItem, from: usize, len: usize) -> Vec<usize> {
        let after = |list: &Vec<usize>| {
            let start = list.partition_point(|&i| i < from);
            list[start..].to_vec()
        };
        if !item.required_tags().is_empty() {
            return item
                .required_tags()
                .iter()
                .map(|tag| self.by_tag.get(tag).map_or_else(Vec::new, after))
                .min_by_key(Vec::len)
                .unwrap_or_default();
        }
        if !item.event_types().is_empty() {
            return item
                .event_types()
                .iter()
                .flat_map(|t| self.by_type.get(t).map_or_else(Vec::new, after))
                .collect();
        }
        (from..len).collect()
    }
}

/// Adds `index` to `key`'s list; the key is copied only the first time it is seen (an append is a hot path).
fn push(lists: &mut HashMap<String, Vec<usize>>, key: &str, index: usize) {
    match lists.get_mut(key) {
        Some(list) => list.push(index),
        None => {
            lists.insert(key.to_owned(), vec![index]);
        }
    }
}
