//! Document projections on every store: loans per member (one document per member, from events in many loan
//! streams), read back by id, by many ids and by a filtered page; a rebuild gives the documents of a clean run; a
//! poison event is dead-lettered while the other documents move on; a stored document that no longer fits its type
//! is a typed error naming the projection and the id, not its values; a new version is built beside the live one
//! and readers switch to it once it caught up (blue/green), the old version's worker then stopping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::projection::document::{
    DocumentChange, DocumentError, DocumentProjection, DocumentStore, DocumentWorker, Documents,
    Filter,
};
use es_core::projection::{CheckpointStore, DeadLetterStore, FailurePolicy, ProjectionOptions};
use es_core::{
    DomainEvent, EventStore, ExpectedVersion, NewEvent, Position, ProjectionRunner, RecordedEvent,
    StreamId,
};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(10);
const NAME: &str = "loans-per-member";

#[derive(DomainEvent)]
#[event(category = "loan")]
enum LoanEvent {
    Lent { member: String, book: String },
    Returned { member: String, book: String },
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct MemberLoans {
    member: String,
    books: Vec<String>,
    count: usize,
}

/// Loans per member; its version is written into each document, so a reader can tell which one it sees.
struct LoansPerMember {
    version: u32,
}

impl DocumentProjection for LoansPerMember {
    type Event = LoanEvent;
    type Document = MemberLoans;
    fn name(&self) -> &str {
        NAME
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn document_id(&self, event: &LoanEvent, _: &RecordedEvent) -> Option<String> {
        match event {
            LoanEvent::Lent { member, .. } | LoanEvent::Returned { member, .. } => {
                Some(member.clone())
            }
        }
    }
    fn apply(
        &self,
        doc: Option<MemberLoans>,
        event: &LoanEvent,
        _: &RecordedEvent,
    ) -> Option<MemberLoans> {
        let mut doc = doc.unwrap_or_default();
        match event {
            LoanEvent::Lent { member, book } => {
                doc.member = format!("{member} (v{})", self.version);
                doc.books.push(book.clone());
            }
            LoanEvent::Returned { book, .. } => doc.books.retain(|b| b != book),
        }
        doc.count = doc.books.len();
        // A member with nothing out has no document.
        (doc.count > 0).then_some(doc)
    }
    fn indexed_fields(&self) -> &[&str] {
        &["count"]
    }
}

async fn loan<S: EventStore>(store: &S, stream: &str, event: LoanEvent) -> Position {
    let event = NewEvent::from_domain(&event, Default::default()).unwrap();
    let stream = StreamId::new(stream).unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![event])
        .await
        .unwrap()
        .last_position
}

fn lent(member: &str, book: &str) -> LoanEvent {
    LoanEvent::Lent {
        member: member.into(),
        book: book.into(),
    }
}

async fn scenario<S>(store: S)
where
    S: EventStore + DocumentStore + CheckpointStore + DeadLetterStore + Clone + 'static,
{
    let options = ProjectionOptions::default()
        .max_attempts(1)
        .on_failure(FailurePolicy::DeadLetter);
    let running = ProjectionRunner::new(store.clone())
        .with(DocumentWorker::new(
            LoansPerMember { version: 1 },
            store.clone(),
            options,
        ))
        .start();
    // 60 loans over 20 loan streams, for 6 members; then every member returns one book.
    let mut last = Position::START;
    for n in 0..60 {
        let member = format!("member-{}", n % 6);
        last = loan(
            &store,
            &format!("loan-{}", n % 20),
            lent(&member, &format!("book-{n}")),
        )
        .await;
    }
    for m in 0..6 {
        let returned = LoanEvent::Returned {
            member: format!("member-{m}"),
            book: format!("book-{m}"),
        };
        last = loan(&store, "loan-returns", returned).await;
    }
    // A poison: a stored `Lent` without a book.
    let poison = NewEvent::new("Lent", 1, serde_json::json!({ "member": "member-0" }));
    store
        .append(
            &StreamId::new("loan-bad").unwrap(),
            ExpectedVersion::Any,
            vec![poison],
        )
        .await
        .unwrap();
    last = loan(&store, "loan-7", lent("member-7", "book-x"))
        .await
        .max(last);
    running.wait_for(NAME, last, WAIT).await.unwrap();

    let loans = Documents::<MemberLoans, _>::new(store.clone(), NAME);
    let ada = loans.get("member-0").await.unwrap().unwrap();
    assert_eq!(
        (ada.count, ada.books.len()),
        (9, 9),
        "ten lent, one returned: {ada:?}"
    );
    assert!(!ada.books.contains(&"book-0".to_owned()));
    let many = loans
        .get_many(&["member-5".into(), "nobody".into(), "member-1".into()])
        .await
        .unwrap();
    let found: Vec<&str> = many.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        found,
        ["member-5", "member-1"],
        "the ids that exist, in the order asked"
    );
    let nine = loans
        .list(Filter::field("count", 9), None, 4)
        .await
        .unwrap();
    let next = loans
        .list(Filter::field("count", 9), Some(&nine[3].0), 4)
        .await
        .unwrap();
    assert_eq!(
        (nine.len(), next.len()),
        (4, 2),
        "six members with nine books, in pages of four"
    );
    assert_eq!(
        loans
            .list(Filter::field("count", 1), None, 10)
            .await
            .unwrap()
            .len(),
        1,
        "member-7"
    );
    assert_eq!(
        store.dead_letters(NAME).await.unwrap().len(),
        1,
        "the poison is parked, the rest went on"
    );

    let before = loans.list(Filter::all(), None, 100).await.unwrap();
    running.rebuild(NAME).await.unwrap();
    running.wait_for(NAME, last, WAIT).await.unwrap();
    assert_eq!(
        loans.list(Filter::all(), None, 100).await.unwrap(),
        before,
        "a rebuild gives the same documents"
    );

    // A document stored in an older shape no longer reads: a typed error naming it, not its values.
    let old = DocumentChange {
        id: "member-9".into(),
        document: Some(serde_json::json!({ "member": "secret-9" })),
    };
    store.commit_documents(NAME, &[old], None).await.unwrap();
    match loans.get("member-9").await {
        Err(DocumentError::Corrupt {
            projection,
            id,
            reason,
        }) => {
            assert_eq!((projection.as_str(), id.as_str()), (NAME, "member-9"));
            assert!(!reason.contains("secret"), "{reason}");
        }
        other => panic!("expected a corrupt document, got {other:?}"),
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loans_per_member_in_memory() {
    scenario(es_memory::InMemoryEventStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loans_per_member_on_postgres() {
    scenario(tests::pg_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loans_per_member_on_sqlite() {
    scenario(tests::sqlite_store().await).await;
}

/// Two runners (as two processes would) run the same document projection on one store: each batch commits only
/// from the checkpoint it read, the loser reads on from the winner's, and every loan is counted once.
async fn racing_runners<S>(store: S)
where
    S: EventStore + DocumentStore + CheckpointStore + DeadLetterStore + Clone + 'static,
{
    let options = || ProjectionOptions::default().batch_size(7);
    let runners: Vec<_> = (0..2)
        .map(|_| {
            ProjectionRunner::new(store.clone())
                .with(DocumentWorker::new(
                    LoansPerMember { version: 1 },
                    store.clone(),
                    options(),
                ))
                .start()
        })
        .collect();
    let mut last = Position::START;
    for n in 0..120 {
        last = loan(
            &store,
            &format!("loan-{}", n % 13),
            lent(&format!("member-{}", n % 4), &format!("book-{n}")),
        )
        .await;
    }
    for running in &runners {
        running.wait_for(NAME, last, WAIT).await.unwrap();
    }
    let loans = Documents::<MemberLoans, _>::new(store.clone(), NAME);
    for m in 0..4 {
        let doc = loans.get(&format!("member-{m}")).await.unwrap().unwrap();
        let mut books = doc.books.clone();
        books.dedup();
        assert_eq!(
            (doc.count, books.len()),
            (30, 30),
            "member-{m}: every loan once"
        );
    }
    for running in runners {
        running.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runners_count_once_in_memory() {
    racing_runners(es_memory::InMemoryEventStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runners_count_once_on_postgres() {
    racing_runners(tests::pg_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runners_count_once_on_sqlite() {
    racing_runners(tests::sqlite_store().await).await;
}

/// Version 2 is built beside the live version 1 and readers switch to it once it has caught up; the version-1
/// worker, still running, then commits nothing more and refuses to go on, naming the live version.
async fn blue_green<S>(store: S)
where
    S: EventStore + DocumentStore + CheckpointStore + DeadLetterStore + Clone + 'static,
{
    let runner = |version| {
        ProjectionRunner::new(store.clone())
            .with(DocumentWorker::new(
                LoansPerMember { version },
                store.clone(),
                ProjectionOptions::default().batch_size(5),
            ))
            .start()
    };
    let loans = Documents::<MemberLoans, _>::new(store.clone(), NAME);
    let members = |n: usize| (0..n).map(|m| format!("member-{m}")).collect::<Vec<_>>();
    let mut last = Position::START;
    for n in 0..40 {
        last = loan(
            &store,
            &format!("loan-{}", n % 7),
            lent(&format!("member-{}", n % 4), &format!("book-{n}")),
        )
        .await;
    }
    let v1 = runner(1);
    v1.wait_for(NAME, last, WAIT).await.unwrap();
    let seen = loans.get_many(&members(4)).await.unwrap();
    assert!(
        seen.iter()
            .all(|(_, doc)| doc.member.ends_with("(v1)") && doc.count == 10),
        "{seen:?}"
    );

    let v2 = runner(2);
    for n in 40..60 {
        last = loan(
            &store,
            &format!("loan-{}", n % 7),
            lent(&format!("member-{}", n % 4), &format!("book-{n}")),
        )
        .await;
    }
    v2.wait_for(&format!("{NAME}@v2"), last, WAIT)
        .await
        .unwrap();
    let seen = loans.get_many(&members(4)).await.unwrap();
    assert!(
        seen.iter()
            .all(|(_, doc)| doc.member.ends_with("(v2)") && doc.count == 15),
        "readers see the whole new version once it caught up: {seen:?}"
    );

    // The old version's worker: its next batch finds its checkpoint gone, and it refuses to run on.
    last = loan(&store, "loan-0", lent("member-0", "book-60")).await;
    v2.wait_for(&format!("{NAME}@v2"), last, WAIT)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let stopped = loop {
        if let Some(error) = v1.state(NAME).unwrap().error().map(str::to_owned)
            && error.contains("live at version 2")
        {
            break error;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            v1.state(NAME)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(stopped.contains(NAME), "{stopped}");
    let member0 = loans.get("member-0").await.unwrap().unwrap();
    assert_eq!(
        (member0.member.as_str(), member0.count),
        ("member-0 (v2)", 16)
    );
    v1.shutdown().await;
    v2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_version_is_built_beside_the_live_one_in_memory() {
    blue_green(es_memory::InMemoryEventStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_version_is_built_beside_the_live_one_on_postgres() {
    blue_green(tests::pg_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_version_is_built_beside_the_live_one_on_sqlite() {
    blue_green(tests::sqlite_store().await).await;
}
