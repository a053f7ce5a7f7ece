//! Property tests: folding is deterministic and matches the stored stream; the memory and SQLite stores agree with
//! a reference model under random interleavings of appends, expectations and retries, and load with snapshots what
//! they fold from scratch. (PostgreSQL runs the same conformance suites; a fresh schema per case would make these
//! minutes long.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use es_core::aggregate::{RepositoryError, SnapshotPolicy, SnapshotStore, Snapshotting};
use es_core::store::AppendResult;
use es_core::{
    Aggregate, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent,
    Repository, StoreError, StreamId, StreamRead, Version,
};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand, AccountEvent};
use proptest::prelude::*;

/// Cases per property on SQLite: each case opens a fresh file.
const SQLITE_CASES: u32 = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn command() -> impl Strategy<Value = AccountCommand> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|owner| AccountCommand::Open { owner }),
        (0u64..500).prop_map(|amount| AccountCommand::Deposit { amount }),
        (0u64..500).prop_map(|amount| AccountCommand::Withdraw { amount }),
        Just(AccountCommand::Close),
    ]
}

proptest! {
    #[test]
    fn folding_is_deterministic_and_equals_replaying_the_stored_stream(
        commands in prop::collection::vec(command(), 0..40)
    ) {
        // The pure model: decide and fold without any store.
        let mut state = Account::default();
        let mut decided = Vec::new();
        for command in &commands {
            if let Ok(events) = state.handle(command) {
                state = events.iter().fold(state, Account::apply);
                decided.extend(events);
            }
        }
        let folded_again = decided.iter().fold(Account::default(), Account::apply);
        prop_assert_eq!(&folded_again, &state);

        // The same commands through the repository and the store.
        runtime().block_on(async {
            let accounts = Repository::<Account, _>::new(InMemoryEventStore::new());
            let mut last = None;
            for command in &commands {
                match accounts.execute("p", command, Metadata::new()).await {
                    Ok(done) => last = Some(done.state),
                    Err(RepositoryError::Rejected { .. }) => {}
                    Err(other) => return Err(TestCaseError::fail(other.to_string())),
                }
            }
            let loaded = accounts.load("p").await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&loaded.state, &state);
            if let Some(last) = last {
                prop_assert_eq!(&last, &state);
            }
            prop_assert_eq!(loaded.version.get(), decided.len() as u64);
            let stream = StreamId::new("account-p").unwrap();
            let stored = accounts.store().read_stream(&stream, StreamRead::forward()).await.unwrap();
            let replayed: Vec<AccountEvent> = stored.iter().map(|e| e.decode().unwrap()).collect();
            prop_assert_eq!(replayed, decided);
            Ok(())
        })?;
    }
}

/// One step of the interleaving test.
#[derive(Clone, Debug)]
enum Op {
    /// A fresh batch of `count` events.
    Append {
        stream: usize,
        expected: Expected,
        count: usize,
    },
    /// The batch of an earlier `Append` step again, with its expectation (a client retry).
    Retry { step: usize },
}

#[derive(Clone, Copy, Debug)]
enum Expected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

impl Expected {
    fn to_core(self) -> ExpectedVersion {
        match self {
            Self::Any => ExpectedVersion::Any,
            Self::NoStream => ExpectedVersion::NoStream,
            Self::StreamExists => ExpectedVersion::StreamExists,
            Self::Exact(v) => ExpectedVersion::Exact(Version::new(v)),
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let expected = prop_oneof![
        Just(Expected::Any),
        Just(Expected::NoStream),
        Just(Expected::StreamExists),
        (0u64..6).prop_map(Expected::Exact),
    ];
    prop_oneof![
        4 => (0usize..3, expected, 0usize..4).prop_map(|(stream, expected, count)| Op::Append { stream, expected, count }),
        1 => (0usize..64).prop_map(|step| Op::Retry { step }),
    ]
}

/// A batch sent at some step: where, with which expectation, and the versions it got once written.
#[derive(Clone)]
struct Batch {
    stream: usize,
    expected: Expected,
    events: Vec<NewEvent>,
    written: Option<(u64, u64)>,
}

/// The reference model: streams as lists of ids, and every batch sent so far.
#[derive(Default)]
struct Model {
    streams: HashMap<usize, Vec<EventId>>,
    global: Vec<EventId>,
    batches: Vec<Batch>,
}

/// What the model predicts for one append.
#[derive(Debug, PartialEq)]
enum Outcome {
    Written(u64, u64),
    Replayed(u64, u64),
    Conflict(Option<u64>),
    Empty,
}

impl Model {
    fn append(&mut self, batch_index: usize) -> Outcome {
        let Batch {
            stream,
            expected,
            events: batch,
            written,
        } = &self.batches[batch_index];
        if let Some((first, last)) = written {
            return Outcome::Replayed(*first, *last);
        }
        if batch.is_empty() {
            return Outcome::Empty;
        }
        let ids = self.streams.entry(*stream).or_default();
        let current = (!ids.is_empty()).then_some(ids.len() as u64);
        if !expected.to_core().accepts(current.map(Version::new)) {
            return Outcome::Conflict(current);
        }
        let first = ids.len() as u64 + 1;
        ids.extend(batch.iter().map(|e| e.event_id));
        self.global.extend(batch.iter().map(|e| e.event_id));
        let last = ids.len() as u64;
        self.batches[batch_index].written = Some((first, last));
        Outcome::Written(first, last)
    }
}

fn observed(result: Result<AppendResult, StoreError>) -> Outcome {
    match result {
        Ok(r) if r.replayed => Outcome::Replayed(r.first_version.get(), r.last_version.get()),
        Ok(r) => Outcome::Written(r.first_version.get(), r.last_version.get()),
        Err(StoreError::Conflict { actual, .. }) => Outcome::Conflict(actual.map(Version::get)),
        Err(StoreError::EmptyAppend { .. }) => Outcome::Empty,
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Runs `ops` against `store` and the model; the store must answer every step as the model predicts and end with
/// the same log and streams.
async fn agrees_with_the_model<S: EventStore>(store: S, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let streams: Vec<StreamId> = (0..3)
        .map(|i| StreamId::new(format!("s-{i}")).unwrap())
        .collect();
    let mut model = Model::default();
    for op in ops {
        let index = match op {
            Op::Append {
                stream,
                expected,
                count,
            } => {
                let batch = (0..count)
                    .map(|n| NewEvent::new("E", 1, serde_json::json!({ "n": n })))
                    .collect();
                model.batches.push(Batch {
                    stream,
                    expected,
                    events: batch,
                    written: None,
                });
                model.batches.len() - 1
            }
            Op::Retry { .. } if model.batches.is_empty() => continue,
            Op::Retry { step } => step % model.batches.len(),
        };
        let Batch {
            stream,
            expected,
            events: batch,
            ..
        } = model.batches[index].clone();
        let got = observed(
            store
                .append(&streams[stream], expected.to_core(), batch)
                .await,
        );
        let want = model.append(index);
        prop_assert_eq!(got, want, "step on stream {} with {:?}", stream, expected);
    }
    let ids =
        |events: Vec<RecordedEvent>| events.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
    prop_assert_eq!(
        ids(store.read_all(Position::START, usize::MAX).await.unwrap()),
        model.global.clone()
    );
    for (i, stream) in streams.iter().enumerate() {
        let stored = ids(store
            .read_stream(stream, StreamRead::forward())
            .await
            .unwrap());
        let expected = model.streams.get(&i).cloned().unwrap_or_default();
        prop_assert_eq!(stored, expected);
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_appends_to_memory_agree_with_a_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        runtime().block_on(agrees_with_the_model(InMemoryEventStore::new(), ops))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(SQLITE_CASES))]
    #[test]
    fn random_appends_to_sqlite_agree_with_a_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        runtime().block_on(async { agrees_with_the_model(tests::sqlite_store().await, ops).await })?;
    }
}

/// The same account with a bumped snapshot schema: old snapshots must be ignored.
#[derive(Clone, Debug, Default, PartialEq)]
struct AccountV2(Account);

impl Aggregate for AccountV2 {
    const CATEGORY: &'static str = Account::CATEGORY;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = examples::bank::AccountError;
    fn handle(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, Self::Error> {
        self.0.handle(command)
    }
    fn apply(self, event: &AccountEvent) -> Self {
        Self(self.0.apply(event))
    }
}

impl Snapshotting for AccountV2 {
    const SNAPSHOT_VERSION: u32 = 2;
    type Snapshot = Account;
    fn to_snapshot(&self) -> Account {
        self.0.clone()
    }
    fn from_snapshot(snapshot: Account) -> Self {
        Self(snapshot)
    }
}

fn policy() -> impl Strategy<Value = SnapshotPolicy> {
    prop_oneof![
        Just(SnapshotPolicy::Never),
        (1u64..20).prop_map(SnapshotPolicy::every),
        (1u64..7).prop_map(|k| SnapshotPolicy::custom(move |due| due.version.get() % k == 0)),
        Just(SnapshotPolicy::custom(
            |due| due.new_events > 0 && due.events_since_snapshot % 3 == 1
        )),
    ]
}

/// Runs `commands` through a repository with snapshots under `policy` and one without: they load the same.
async fn snapshots_change_nothing<S>(
    store: S,
    commands: Vec<AccountCommand>,
    policy: SnapshotPolicy,
) -> Result<(), TestCaseError>
where
    S: EventStore + SnapshotStore + Clone + 'static,
{
    let with = Repository::<Account, _>::new(store.clone()).with_snapshots(store.clone(), policy);
    let scratch = Repository::<Account, _>::new(store.clone());
    for command in &commands {
        let _ = with.execute("p", command, Metadata::new()).await;
        let a = with.load("p").await.unwrap();
        let b = scratch.load("p").await.unwrap();
        prop_assert_eq!(&a.state, &b.state);
        prop_assert_eq!(a.version, b.version);
        prop_assert!(a.snapshot.is_none_or(|v| v <= a.version));
    }
    // A bumped snapshot version ignores every snapshot written so far.
    let bumped = Repository::<AccountV2, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::Never);
    let loaded = bumped.load("p").await.unwrap();
    prop_assert_eq!(loaded.snapshot, None);
    prop_assert_eq!(&loaded.state.0, &scratch.load("p").await.unwrap().state);
    Ok(())
}

proptest! {
    #[test]
    fn state_loaded_from_memory_with_snapshots_equals_state_folded_from_scratch(
        commands in prop::collection::vec(command(), 0..60),
        policy in policy(),
    ) {
        runtime().block_on(snapshots_change_nothing(InMemoryEventStore::new(), commands, policy))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(SQLITE_CASES))]
    #[test]
    fn state_loaded_from_sqlite_with_snapshots_equals_state_folded_from_scratch(
        commands in prop::collection::vec(command(), 0..60),
        policy in policy(),
    ) {
        runtime().block_on(async { snapshots_change_nothing(tests::sqlite_store().await, commands, policy).await })?;
    }
}
