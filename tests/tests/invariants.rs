//! Invariants across aggregates through the repository and the decision model, on every store: transfers
//! (`execute_many`) racing deposits (`execute`) from two repositories with their own caches (two processes) keep
//! every cent; a taken name is refused; tags come back with their events and select them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::aggregate::{DecisionError, Decisions, RepositoryError};
use es_core::store::{Query, QueryItem};
use es_core::{EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StreamId, StreamRead};
use examples::bank::{Account, AccountCommand};
use examples::consistency::{ClaimUsername, RegisterUser, UsernameError, transfer};

async fn transfers_keep_every_cent<S: EventStore + Clone + 'static>(store: S) {
    // Two repositories, each with its own cache: what two processes would have.
    let one = Repository::<Account, _>::new(store.clone()).with_max_attempts(20);
    let two = Repository::<Account, _>::new(store.clone()).with_max_attempts(20);
    for id in ["a", "b", "c"] {
        one.execute(
            id,
            &AccountCommand::Open { owner: id.into() },
            Metadata::new(),
        )
        .await
        .unwrap();
        one.execute(
            id,
            &AccountCommand::Deposit { amount: 1_000 },
            Metadata::new(),
        )
        .await
        .unwrap();
    }
    let tasks: Vec<_> = (0..12)
        .map(|task| {
            let repo = if task % 2 == 0 {
                one.clone()
            } else {
                two.clone()
            };
            tokio::spawn(async move {
                let ids = ["a", "b", "c"];
                let (from, to) = (ids[task % 3], ids[(task + 1) % 3]);
                let mut deposited = 0;
                for round in 0..10 {
                    if round % 3 == 0 {
                        match repo
                            .execute(
                                from,
                                &AccountCommand::Deposit { amount: 7 },
                                Metadata::new(),
                            )
                            .await
                        {
                            Ok(_) => deposited += 7,
                            Err(RepositoryError::TooManyConflicts { .. }) => {}
                            Err(other) => panic!("a deposit failed: {other}"),
                        }
                    }
                    match repo
                        .execute_many(&[from, to], Metadata::new(), |states| transfer(150, states))
                        .await
                    {
                        Ok(done) => assert_eq!(done.appends.iter().flatten().count(), 2),
                        // Refused (too little money), or other writers kept winning: nothing written either way.
                        Err(
                            RepositoryError::Rejected { .. }
                            | RepositoryError::TooManyConflicts { .. },
                        ) => {}
                        Err(other) => panic!("a transfer failed: {other}"),
                    }
                }
                deposited
            })
        })
        .collect();
    let mut deposited = 0;
    for task in tasks {
        deposited += task.await.unwrap();
    }
    // Loaded from the store: no cent created or lost.
    let mut total = 0;
    for id in ["a", "b", "c"] {
        total += one.load(id).await.unwrap().state.balance;
    }
    assert_eq!(total, 3_000 + deposited);
    // Both caches decide on fresh states again: a transfer checks every version it read.
    for repo in [&one, &two] {
        let moved = repo
            .execute_many(&["a", "b"], Metadata::new(), |states| transfer(1, states))
            .await
            .unwrap();
        assert_eq!(moved.appends.iter().flatten().count(), 2);
    }
    let mut after = 0;
    for id in ["a", "b", "c"] {
        after += two.load(id).await.unwrap().state.balance;
    }
    assert_eq!(after, 3_000 + deposited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_every_cent_in_memory() {
    transfers_keep_every_cent(es_memory::InMemoryEventStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_every_cent_on_sqlite() {
    transfers_keep_every_cent(tests::sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_every_cent_on_postgres() {
    transfers_keep_every_cent(tests::pg_store().await).await;
}

/// A registration of a taken name is refused; the events keep their tags (from the derive, or given at append)
/// and a query read selects them by all of an item's tags, after a position.
async fn a_taken_name_is_refused_and_tags_select_events<S: EventStore + Clone + 'static>(store: S) {
    let register = |user: &str| RegisterUser {
        user: user.into(),
        username: "ada".into(),
    };
    let decisions = Decisions::new(store.clone());
    decisions
        .execute::<ClaimUsername>(&register("1"), Metadata::new())
        .await
        .unwrap();
    match decisions
        .execute::<ClaimUsername>(&register("2"), Metadata::new())
        .await
    {
        Err(DecisionError::Rejected(UsernameError::Taken(name))) => assert_eq!(name, "ada"),
        other => panic!("expected the name taken, got {other:?}"),
    }
    let stored = store
        .read_stream(&StreamId::new("user-1").unwrap(), StreamRead::forward())
        .await
        .unwrap();
    assert_eq!(stored[0].tags, ["username:ada"]);
    // An event appended with tags given at append time is found by them, after a position.
    let noted =
        NewEvent::new("Noted", 1, serde_json::json!({})).with_tags(["username:ada", "audit:1"]);
    let appended = store
        .append(
            &StreamId::new("audit-1").unwrap(),
            ExpectedVersion::Any,
            vec![noted],
        )
        .await
        .unwrap();
    let query = Query::new().item(QueryItem::tags(["username:ada", "audit:1"]));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let read = loop {
        let read = store.read_query(&query, None).await.unwrap();
        if !read.events.is_empty() || tokio::time::Instant::now() > deadline {
            break read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.events[0].position, appended.last_position);
    let after = store
        .read_query(&query, Some(appended.last_position))
        .await
        .unwrap();
    assert!(after.events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_name_is_refused_and_tags_select_events_in_memory() {
    a_taken_name_is_refused_and_tags_select_events(es_memory::InMemoryEventStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_name_is_refused_and_tags_select_events_on_sqlite() {
    a_taken_name_is_refused_and_tags_select_events(tests::sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_name_is_refused_and_tags_select_events_on_postgres() {
    a_taken_name_is_refused_and_tags_select_events(tests::pg_store().await).await;
}
