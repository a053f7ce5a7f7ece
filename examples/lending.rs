//! The library-lending example: books and members, a process manager that records loans on members (and takes a
//! book back when a member is at the limit), and a "loans per member" document projection — the same code on every
//! store, the read model written once.
//!
//! In memory:
//! ```text
//! cargo run --example lending
//! ```
//! On PostgreSQL (schema `lending`, or `LENDING_SCHEMA`):
//! ```text
//! cargo run --example lending -- --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! ```
//! In a SQLite file (a second run adds its members to the first run's history):
//! ```text
//! cargo run --example lending -- --sqlite lending.db
//! ```

use std::time::Duration;

use es_core::process::{ProcessRunner, ProcessStore};
use es_core::projection::document::{DocumentStore, DocumentWorker, Documents, Filter};
use es_core::projection::{CheckpointStore, DeadLetterStore, ProjectionOptions};
use es_core::{EventStore, Metadata, ProjectionRunner};
use es_memory::InMemoryEventStore;
use es_postgres::PgEventStore;
use examples::lending::{
    BookCommand, LOAN_LIMIT, LendingRouter, LoanRecorder, LoansPerMember, MemberCommand,
    MemberLoans,
};
use examples::store_choice::{StoreChoice, open_sqlite, run_suffix};

type Error = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let choice = StoreChoice::from_args(std::env::args().skip(1), None)
        .map_err(|usage| format!("usage: lending {usage}"))?;
    match choice {
        StoreChoice::Memory => {
            println!("Store: in memory.\n");
            story(InMemoryEventStore::new(), "").await
        }
        StoreChoice::Postgres(url) => {
            let schema = std::env::var("LENDING_SCHEMA").unwrap_or_else(|_| "lending".to_owned());
            let store = PgEventStore::builder()
                .schema(&schema)
                .connect(&url)
                .await?;
            store.migrate().await?;
            println!("Store: PostgreSQL, schema `{schema}`.\n");
            story(store, &run_suffix()).await
        }
        StoreChoice::Sqlite(file) => story(open_sqlite(&file).await?, &run_suffix()).await,
    }
}

async fn story<S>(store: S, run: &str) -> Result<(), Error>
where
    S: EventStore
        + ProcessStore
        + CheckpointStore
        + DeadLetterStore
        + DocumentStore
        + Clone
        + 'static,
{
    let router = LendingRouter::new(store.clone());
    let (books, members) = (router.books.clone(), router.members.clone());
    let recorder =
        ProcessRunner::new(LoanRecorder, router, store.clone()).start(store.clone(), store.clone());
    let read_model = ProjectionRunner::new(store.clone())
        .with(DocumentWorker::new(
            LoansPerMember,
            store.clone(),
            ProjectionOptions::default(),
        ))
        .start();

    let (ada, bob) = (format!("ada{run}"), format!("bob{run}"));
    members
        .execute(
            &ada,
            &MemberCommand::Join { name: "Ada".into() },
            Metadata::new(),
        )
        .await?;
    members
        .execute(
            &bob,
            &MemberCommand::Join { name: "Bob".into() },
            Metadata::new(),
        )
        .await?;
    let titles = ["Dune", "Emma", "Ulysses", "Walden", "Beloved"];
    let ids: Vec<String> = (1..=titles.len()).map(|n| format!("b{n}{run}")).collect();
    for (id, title) in ids.iter().zip(titles) {
        books
            .execute(
                id,
                &BookCommand::Add {
                    title: title.into(),
                },
                Metadata::new(),
            )
            .await?;
    }
    // Ada takes four books, one more than the limit: the process manager records three, and the fourth is taken
    // back when her record refuses it. Bob takes one and returns it.
    for id in &ids[..4] {
        books
            .execute(
                id,
                &BookCommand::Lend {
                    member: ada.clone(),
                },
                Metadata::new(),
            )
            .await?;
    }
    books
        .execute(
            &ids[4],
            &BookCommand::Lend {
                member: bob.clone(),
            },
            Metadata::new(),
        )
        .await?;
    let last = books
        .execute(&ids[4], &BookCommand::Return, Metadata::new())
        .await?;
    let at = last.position().ok_or("the return wrote an event")?;
    recorder.wait_for(at, WAIT).await?;
    // The fourth book back on the shelf: the process manager's compensation, then the read model.
    let deadline = tokio::time::Instant::now() + WAIT;
    while books.load(&ids[3]).await?.state.lent_to.is_some() {
        if tokio::time::Instant::now() > deadline {
            return Err("the fourth book was never taken back".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let head = store.head().await?.ok_or("an empty store")?;
    recorder.wait_for(head, WAIT).await?;
    read_model.wait_for("loans-per-member", head, WAIT).await?;

    let loans = Documents::<MemberLoans, _>::new(store.clone(), "loans-per-member");
    let ada_loans = loans.get(&ada).await?.ok_or("Ada has a document")?;
    let bob_loans = loans.get(&bob).await?.ok_or("Bob has a document")?;
    println!(
        "Ada has {} books out (the limit is {LOAN_LIMIT}): {:?}",
        ada_loans.count, ada_loans.books
    );
    println!("Bob has {} books out.", bob_loans.count);
    let at_limit = loans
        .list(Filter::field("count", LOAN_LIMIT), None, 100)
        .await?;
    println!("Members at the limit: {}.", at_limit.len());
    if ada_loans.count != LOAN_LIMIT
        || bob_loans.count != 0
        || at_limit.iter().all(|(id, _)| *id != ada)
    {
        return Err("the read model does not match the story".into());
    }
    recorder.shutdown().await;
    read_model.shutdown().await;
    Ok(())
}
