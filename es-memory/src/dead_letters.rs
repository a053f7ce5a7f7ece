//! Dead letters in memory.

use async_trait::async_trait;
use es_core::projection::{DeadLetter, DeadLetterStore};
use es_core::{EventId, StoreError};

use crate::InMemoryEventStore;

#[async_trait]
impl DeadLetterStore for InMemoryEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<(), StoreError> {
        let mut letters = self.shared.dead_letters.lock();
        letters.retain(|l| !(l.projection == letter.projection && l.event_id == letter.event_id));
        letters.push(letter);
        letters.sort_by_key(|l| l.position);
        Ok(())
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let letters = self.shared.dead_letters.lock();
        Ok(letters
            .iter()
            .filter(|l| l.projection == projection)
            .cloned()
            .collect())
    }

    async fn remove_dead_letter(
        &self,
        projection: &str,
        event_id: EventId,
    ) -> Result<(), StoreError> {
        self.shared
            .dead_letters
            .lock()
            .retain(|l| !(l.projection == projection && l.event_id == event_id));
        Ok(())
    }
}
