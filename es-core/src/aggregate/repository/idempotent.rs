//! Commands with ids: executed at most once, a replay answered with the stream's state.

use super::Repository;
use super::error::RepositoryError;
use super::loaded::{Executed, Loaded};
use crate::aggregate::Aggregate;
use crate::store::{EventStore, Metadata, StreamId};
use uuid::Uuid;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Executes `command` as the command with id `command_id`, at most once: its events get ids derived from
    /// `command_id` ([`event_id_for`](crate::aggregate::event_id_for)), and when the first of them is already in the stream the command is not
    /// decided again — the result says `replayed` and nothing is written. Process managers send every command this
    /// way, so redelivering their inputs cannot duplicate effects.
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository};
    /// # use es_memory::InMemoryEventStore;
    /// # #[derive(Default, Clone)] struct Counter(u64);
    /// # #[derive(DomainEvent)] #[event(aggregate = Counter)] enum CounterEvent { Incremented }
    /// # impl Aggregate for Counter {
    /// #     const CATEGORY: &'static str = "counter"; type Event = CounterEvent; type Command = ();
    /// #     type Error = std::convert::Infallible;
    /// #     fn handle(&self, _: &()) -> Result<Vec<CounterEvent>, Self::Error> { Ok(vec![CounterEvent::Incremented]) }
    /// #     fn apply(self, _: &CounterEvent) -> Self { Counter(self.0 + 1) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let counters = Repository::<Counter, _>::new(InMemoryEventStore::new());
    /// let command = uuid::Uuid::now_v7();
    /// assert!(!counters.execute_as("a", command, &(), Metadata::new()).await?.replayed);
    /// let again = counters.execute_as("a", command, &(), Metadata::new()).await?;
    /// assert!(again.replayed);
    /// assert_eq!(again.state.0, 1); // executed once
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Repository::execute`].
    pub async fn execute_as(
        &self,
        id: &str,
        command_id: Uuid,
        command: &A::Command,
        metadata: Metadata,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.execute_inner(id, Some(command_id), command, metadata)
            .await
    }

    /// The answer for a command that had run before: nothing written, the stream's current state.
    pub(super) async fn replayed(
        &self,
        stream: &StreamId,
        attempts: u32,
        entry: &mut Option<Loaded<A>>,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let loaded = self.fold(stream, None, None).await?;
        let executed = Executed {
            state: loaded.state.clone(),
            version: loaded.version,
            events: Vec::new(),
            append: None,
            attempts,
            replayed: true,
        };
        self.keep(entry, loaded);
        Ok(executed)
    }
}
