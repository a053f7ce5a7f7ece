//! Decisions over a dynamic consistency boundary: the events a query selects across streams, folded into a state;
//! the decision appended on the condition that no event matching the query arrived since it was read.

use crate::aggregate::repository::backoff;
use crate::event::DomainEvent;
use crate::store::{
    AppendCondition, AppendResult, EventDecodeError, EventStore, ExpectedVersion, Metadata,
    MultiAppend, NewEvent, Query, StoreError, StreamId,
};

/// A decision over the events a [`Query`] selects, in the style of an [`Aggregate`](crate::Aggregate) but
/// without a stream of its own: [`query`](Self::query) names the events the decision depends on (by type and tag,
/// across streams), [`apply`](Self::apply) folds them, [`decide`](Self::decide) returns the new events with the
/// stream each goes to. [`Decisions::execute`] appends them on the condition that no event matching the query was
/// stored since the read, and decides again when one was.
pub trait DecisionModel: Sized + Send + Sync {
    /// The events it reads and writes.
    type Event: DomainEvent;
    /// What it decides on.
    type Command: Send + Sync;
    /// Why it refuses a command.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The events the decision on `command` depends on.
    fn query(command: &Self::Command) -> Query;

    /// The state before any of them.
    fn initial(command: &Self::Command) -> Self;

    /// The state after `event`.
    #[must_use]
    fn apply(self, event: &Self::Event) -> Self;

    /// The new events, each with its stream; empty when nothing changes.
    ///
    /// # Errors
    /// The command is refused.
    fn decide(&self, command: &Self::Command) -> Result<Vec<(StreamId, Self::Event)>, Self::Error>;
}

/// Why [`Decisions::execute`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError<E: std::error::Error + 'static> {
    /// The model refused the command; nothing was written.
    #[error("decision refused: {0}")]
    Rejected(#[source] E),
    /// Other writers kept adding events the decision depends on; nothing was written.
    #[error("the boundary kept changing: {attempts} decisions lost the race")]
    TooManyConflicts {
        /// How many times it decided.
        attempts: u32,
        /// The last failed condition.
        #[source]
        source: StoreError,
    },
    /// A stored event of the boundary did not decode.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// A new event did not encode.
    #[error(transparent)]
    Encode(#[from] crate::store::EncodeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`Decisions::execute`] did.
#[derive(Debug)]
pub struct Decided<M: DecisionModel> {
    /// The state the decision was made on.
    pub state: M,
    /// The events it stored, with their streams.
    pub events: Vec<(StreamId, M::Event)>,
    /// Where they were stored, per stream written.
    pub appends: Vec<AppendResult>,
    /// How many times it decided: 1, plus one per lost race.
    pub attempts: u32,
}

/// Executes [`DecisionModel`]s against a store: read the query, fold, decide, append with the condition; on a
/// failed condition, again on fresh events.
///
/// ```
/// use es_core::aggregate::{DecisionModel, Decisions};
/// use es_core::store::{Query, QueryItem};
/// use es_core::{DomainEvent, Metadata, StreamId};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize, DomainEvent)]
/// enum UserEvent { Registered { user: String, #[tag] username: String } }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("username taken")]
/// struct Taken;
///
/// /// A username is unique across every user: the boundary is the events tagged with it.
/// struct UsernameFree(bool);
///
/// impl DecisionModel for UsernameFree {
///     type Event = UserEvent;
///     type Command = (String, String); // (user, username)
///     type Error = Taken;
///     fn query((_, username): &Self::Command) -> Query {
///         Query::new().item(QueryItem::types(["Registered"]).and_tags([format!("username:{username}")]))
///     }
///     fn initial(_: &Self::Command) -> Self { UsernameFree(true) }
///     fn apply(self, _: &UserEvent) -> Self { UsernameFree(false) }
///     fn decide(&self, (user, username): &Self::Command) -> Result<Vec<(StreamId, UserEvent)>, Taken> {
///         if !self.0 { return Err(Taken); }
///         let stream = StreamId::new(format!("user-{user}")).map_err(|_| Taken)?;
///         Ok(vec![(stream, UserEvent::Registered { user: user.clone(), username: username.clone() })])
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let decisions = Decisions::new(es_memory::InMemoryEventStore::new());
/// decisions.execute::<UsernameFree>(&("1".into(), "ada".into()), Metadata::new()).await?;
/// assert!(decisions.execute::<UsernameFree>(&("2".into(), "ada".into()), Metadata::new()).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Decisions<S> {
    store: S,
    max_attempts: u32,
}

impl<S: EventStore> Decisions<S> {
    /// Decisions on `store`, deciding at most 10 times per command.
    pub fn new(store: S) -> Self {
        Self {
            store,
            max_attempts: 10,
        }
    }

    /// How many times a command is decided before [`DecisionError::TooManyConflicts`] (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Its store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads `M::query(command)`, folds the events into `M`, decides, and appends the new events (each stream
    /// with [`ExpectedVersion::Any`]) on the condition that no event matching the query was stored since the read;
    /// when one was, reads the events stored since, folds them on and decides again.
    ///
    /// # Errors
    /// [`DecisionError`].
    pub async fn execute<M: DecisionModel>(
        &self,
        command: &M::Command,
        metadata: Metadata,
    ) -> Result<Decided<M>, DecisionError<M::Error>> {
        let query = M::query(command);
        let mut attempts = 0;
        // After a lost race only the events stored since the last read are read and folded on.
        let mut state = M::initial(command);
        let mut after = None;
        loop {
            attempts += 1;
            let read = self.store.read_query(&query, after).await?;
            after = after.max(read.after);
            for record in &read.events {
                // Events of types the model does not know (a tag-only item can match them) are not its business.
                if M::Event::current_schema_version(&record.event_type).is_none() {
                    continue;
                }
                state = state.apply(&record.decode::<M::Event>()?);
            }
            let events = state.decide(command).map_err(DecisionError::Rejected)?;
            if events.is_empty() {
                return Ok(Decided {
                    state,
                    events,
                    appends: Vec::new(),
                    attempts,
                });
            }
            let mut streams: Vec<(StreamId, Vec<NewEvent>)> = Vec::new();
            for (stream, event) in &events {
                let new = NewEvent::from_domain(event, metadata.clone())?;
                match streams.iter_mut().find(|(s, _)| s == stream) {
                    Some((_, batch)) => batch.push(new),
                    None => streams.push((stream.clone(), vec![new])),
                }
            }
            let append = streams.into_iter().fold(
                MultiAppend::new().condition(AppendCondition::new(query.clone(), after)),
                |append, (stream, batch)| append.append(stream, ExpectedVersion::Any, batch),
            );
            match self.store.append_multi(append).await {
                Ok(appends) => {
                    return Ok(Decided {
                        state,
                        events,
                        appends,
                        attempts,
                    });
                }
                Err(failed @ StoreError::ConditionFailed { .. })
                    if attempts >= self.max_attempts =>
                {
                    return Err(DecisionError::TooManyConflicts {
                        attempts,
                        source: failed,
                    });
                }
                Err(StoreError::ConditionFailed { .. }) => backoff(attempts).await,
                Err(other) => return Err(other.into()),
            }
        }
    }
}
