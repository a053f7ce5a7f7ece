//! A decision over several aggregates: load them all, decide with every state, append to every stream in one
//! multi-stream append (all or nothing); on a lost race, again on fresh states.

use chrono::Utc;

use super::Repository;
use super::error::RepositoryError;
use super::execute::backoff;
use super::loaded::Loaded;
use crate::aggregate::Aggregate;
use crate::aggregate::snapshot::SnapshotDue;
use crate::store::error::StoreError;
use crate::store::{
    AppendResult, EventStore, ExpectedVersion, Metadata, MultiAppend, NewEvent, Version,
};

/// What [`Repository::execute_many`] did: for each aggregate, in the order of the ids, its state and version
/// after the decision, and the events it stored.
#[derive(Debug)]
pub struct ExecutedMany<A: Aggregate> {
    /// The states after the new events, in the order of the ids.
    pub states: Vec<A>,
    /// The stream versions after the new events.
    pub versions: Vec<Version>,
    /// The events decided for each aggregate (empty: it was only checked).
    pub events: Vec<Vec<A::Event>>,
    /// Where each aggregate's events were stored; `None` for an aggregate without new events.
    pub appends: Vec<Option<AppendResult>>,
    /// How many times the decision was made: 1, plus one per lost race.
    pub attempts: u32,
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// Decides over several aggregates at once and stores the outcome atomically: loads aggregates `ids`
    /// (distinct), calls `decide` with their states in the order of `ids`, and appends the events it returns for
    /// each (one list per id) in one [`MultiAppend`], every stream at the version its state was loaded at — an
    /// aggregate given no events is checked, so nothing is stored when any state the decision read has changed.
    /// On such a conflict it loads the streams that moved again and decides again, like [`execute`](Self::execute).
    /// A bank transfer debits one account and credits another, or neither.
    ///
    /// ```
    /// # use es_core::{Aggregate, DomainEvent, Metadata, Repository};
    /// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, DomainEvent)]
    /// # #[event(aggregate = Account)]
    /// # enum AccountEvent { Deposited { amount: u64 }, Withdrawn { amount: u64 } }
    /// # #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
    /// # struct Account { balance: u64 }
    /// # #[derive(Debug, thiserror::Error)] #[error("insufficient funds")] struct Insufficient;
    /// # impl Aggregate for Account {
    /// #     const CATEGORY: &'static str = "account";
    /// #     type Command = (); type Event = AccountEvent; type Error = Insufficient;
    /// #     fn handle(&self, _: &()) -> Result<Vec<AccountEvent>, Insufficient> { Ok(vec![]) }
    /// #     fn apply(mut self, e: &AccountEvent) -> Self {
    /// #         match e { AccountEvent::Deposited { amount } => self.balance += amount,
    /// #                   AccountEvent::Withdrawn { amount } => self.balance -= amount }
    /// #         self
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let accounts = Repository::<Account, _>::new(es_memory::InMemoryEventStore::new());
    /// # accounts.execute_many(&["a"], Metadata::new(), |_| Ok(vec![vec![AccountEvent::Deposited { amount: 10 }]])).await?;
    /// let done = accounts
    ///     .execute_many(&["a", "b"], Metadata::new(), |states| {
    ///         if states[0].balance < 7 {
    ///             return Err(Insufficient);
    ///         }
    ///         Ok(vec![vec![AccountEvent::Withdrawn { amount: 7 }], vec![AccountEvent::Deposited { amount: 7 }]])
    ///     })
    ///     .await?;
    /// assert_eq!((done.states[0].balance, done.states[1].balance), (3, 7));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RepositoryError::Rejected`] (naming the first aggregate) when `decide` refuses,
    /// [`RepositoryError::TooManyConflicts`] after losing every race, [`RepositoryError::Store`] with
    /// [`StoreError::StreamRepeated`] for an id given twice, and the errors of [`Repository::load`].
    pub async fn execute_many<F>(
        &self,
        ids: &[&str],
        metadata: Metadata,
        decide: F,
    ) -> Result<ExecutedMany<A>, RepositoryError<A::Error>>
    where
        F: Fn(&[&A]) -> Result<Vec<Vec<A::Event>>, A::Error>,
    {
        let streams = ids
            .iter()
            .map(|id| Self::stream_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = streams.first().cloned() else {
            return Err(StoreError::NothingToAppend.into());
        };
        let mut order: Vec<usize> = (0..streams.len()).collect();
        order.sort_by(|&x, &y| streams[x].as_str().cmp(streams[y].as_str()));
        if let Some(pair) = order.windows(2).find(|p| streams[p[0]] == streams[p[1]]) {
            return Err(StoreError::StreamRepeated {
                stream: streams[pair[0]].clone(),
            }
            .into());
        }
        let metadata = Metadata {
            occurred_at: metadata.occurred_at.or_else(|| Some(Utc::now())),
            ..metadata
        };
        // This process's commands on these streams take turns: the slots locked in one order (no deadlock).
        let slots: Vec<_> = order
            .iter()
            .map(|&i| (i, self.cache.slot(&streams[i])))
            .collect();
        let mut guards = Vec::with_capacity(slots.len());
        for (i, slot) in &slots {
            guards.push((*i, slot.entry.lock().await));
        }
        guards.sort_by_key(|(i, _)| *i);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut current: Vec<Loaded<A>> = Vec::with_capacity(streams.len());
            for ((_, entry), stream) in guards.iter_mut().zip(&streams) {
                current.push(match entry.take() {
                    Some(cached) => cached,
                    None => self.fold(stream, None, None).await?,
                });
            }
            let states: Vec<&A> = current.iter().map(|c| &c.state).collect();
            let decided = match decide(&states) {
                Ok(decided) if decided.len() == streams.len() => decided,
                Ok(decided) => {
                    return Err(RepositoryError::Store(StoreError::Backend {
                        operation: "execute_many",
                        source: format!(
                            "the decision returned {} lists of events for {} aggregates",
                            decided.len(),
                            streams.len()
                        )
                        .into(),
                    }));
                }
                Err(source) => {
                    for ((_, entry), loaded) in guards.iter_mut().zip(current) {
                        self.keep(entry, loaded);
                    }
                    return Err(RepositoryError::Rejected {
                        stream: first,
                        source,
                    });
                }
            };
            let mut append = MultiAppend::new();
            for ((stream, loaded), events) in streams.iter().zip(&current).zip(&decided) {
                let expected = ExpectedVersion::Exact(loaded.version);
                append = match events.is_empty() {
                    true => append.check(stream.clone(), expected),
                    false => append.append(
                        stream.clone(),
                        expected,
                        events
                            .iter()
                            .map(|event| NewEvent::from_domain(event, metadata.clone()))
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
            }
            if append.appends().is_empty() {
                let versions = current.iter().map(|c| c.version).collect();
                let states = current.iter().map(|c| c.state.clone()).collect();
                for ((_, entry), loaded) in guards.iter_mut().zip(current) {
                    self.keep(entry, loaded);
                }
                return Ok(ExecutedMany {
                    states,
                    versions,
                    appends: decided.iter().map(|_| None).collect(),
                    events: decided,
                    attempts,
                });
            }
            match self.store.append_multi(append).await {
                Ok(results) => {
                    let mut results = results.into_iter();
                    let mut executed = ExecutedMany {
                        states: Vec::with_capacity(streams.len()),
                        versions: Vec::with_capacity(streams.len()),
                        appends: Vec::with_capacity(streams.len()),
                        events: Vec::new(),
                        attempts,
                    };
                    for (((_, entry), loaded), (stream, events)) in guards
                        .iter_mut()
                        .zip(current)
                        .zip(streams.iter().zip(&decided))
                    {
                        let appended = match events.is_empty() {
                            true => None,
                            false => results.next(),
                        };
                        let state = events.iter().fold(loaded.state, A::apply);
                        let mut snapshot = loaded.snapshot;
                        let version = appended.map_or(loaded.version, |a| a.last_version);
                        if let Some(append) = appended {
                            let due = SnapshotDue {
                                version,
                                events_since_snapshot: version.get()
                                    - loaded.snapshot.unwrap_or(Version::INITIAL).get(),
                                new_events: events.len(),
                            };
                            if self.snapshot_after(stream, &state, due).await {
                                snapshot = Some(append.last_version);
                            }
                        }
                        self.keep(
                            entry,
                            Loaded {
                                state: state.clone(),
                                version,
                                snapshot,
                            },
                        );
                        executed.states.push(state);
                        executed.versions.push(version);
                        executed.appends.push(appended);
                    }
                    executed.events = decided;
                    return Ok(executed);
                }
                Err(conflict @ StoreError::Conflicts { .. }) if attempts >= self.max_attempts => {
                    let stream = match &conflict {
                        StoreError::Conflicts { conflicts } => conflicts
                            .first()
                            .map_or_else(|| first.clone(), |c| c.stream.clone()),
                        _ => first.clone(),
                    };
                    return Err(RepositoryError::TooManyConflicts {
                        stream,
                        attempts,
                        source: conflict,
                    });
                }
                Err(StoreError::Conflicts { conflicts }) => {
                    tracing::debug!(
                        conflicts = conflicts.len(),
                        attempts,
                        "multi-stream append lost a race; deciding again"
                    );
                    // The streams that did not move keep their states: only the others are loaded again.
                    for (((_, entry), loaded), stream) in
                        guards.iter_mut().zip(current).zip(&streams)
                    {
                        if !conflicts.iter().any(|c| &c.stream == stream) {
                            self.keep(entry, loaded);
                        }
                    }
                    backoff(attempts).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
}
