//! Invariants across aggregates: money moved between two accounts atomically (a multi-stream append), and usernames
//! unique across every user (an append conditioned on the events tagged with the name), each raced by 8 tasks.
//!
//! Run it from the workspace root, on the in-memory store:
//! ```text
//! cargo run --example consistency
//! ```
//! on PostgreSQL (schema `consistency`, or `CONSISTENCY_SCHEMA`), or in a SQLite file, with the same code:
//! ```text
//! cargo run --example consistency -- --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! cargo run --example consistency -- --sqlite consistency.db
//! ```

use es_core::aggregate::{DecisionError, Decisions};
use es_core::{EventStore, Metadata, Repository};
use es_memory::InMemoryEventStore;
use es_postgres::PgEventStore;
use examples::bank::{Account, AccountCommand};
use examples::consistency::{ClaimUsername, RegisterUser, UsernameError, transfer};
use examples::store_choice::{StoreChoice, open_sqlite, run_suffix};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let choice = StoreChoice::from_args(std::env::args().skip(1), None)
        .map_err(|usage| format!("usage: consistency {usage}"))?;
    match choice {
        StoreChoice::Memory => {
            println!("Store: in memory.\n");
            story(InMemoryEventStore::new(), "").await
        }
        StoreChoice::Postgres(url) => {
            let schema =
                std::env::var("CONSISTENCY_SCHEMA").unwrap_or_else(|_| "consistency".to_owned());
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
    S: EventStore + Clone + 'static,
{
    let accounts = Repository::<Account, _>::new(store.clone());
    let (ada, bob) = (format!("ada{run}"), format!("bob{run}"));
    for (id, owner, deposit) in [(&ada, "Ada", 10_000), (&bob, "Bob", 0)] {
        accounts
            .execute(
                id,
                &AccountCommand::Open {
                    owner: owner.into(),
                },
                Metadata::new(),
            )
            .await?;
        if deposit > 0 {
            accounts
                .execute(
                    id,
                    &AccountCommand::Deposit { amount: deposit },
                    Metadata::new(),
                )
                .await?;
        }
    }
    println!(
        "Ada has 100.00, Bob nothing. 8 tasks move 10.00 back and forth, 5 times each, at once."
    );
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (accounts, ada, bob) = (accounts.clone(), ada.clone(), bob.clone());
            tokio::spawn(async move {
                let (from, to) = if task % 2 == 0 {
                    (&ada, &bob)
                } else {
                    (&bob, &ada)
                };
                let mut moved = 0;
                for _ in 0..5 {
                    let done = accounts
                        .execute_many(&[from, to], Metadata::new(), |states| {
                            transfer(1_000, states)
                        })
                        .await;
                    if done.is_ok() {
                        moved += 1;
                    }
                }
                moved
            })
        })
        .collect();
    let mut moved = 0;
    for task in tasks {
        moved += task.await?;
    }
    let (a, b) = (
        accounts.load(&ada).await?.state,
        accounts.load(&bob).await?.state,
    );
    println!(
        "{moved} transfers went through (the others found too little money); Ada {}, Bob {}: together {}.",
        cents(a.balance),
        cents(b.balance),
        cents(a.balance + b.balance)
    );
    if a.balance + b.balance != 10_000 {
        return Err("money was created or lost".into());
    }
    let refused = accounts
        .execute_many(&[&bob, &ada], Metadata::new(), |states| {
            transfer(b.balance + 1, states)
        })
        .await;
    println!(
        "Bob sends more than he has: {}",
        refused.map_or_else(|e| e.to_string(), |_| "accepted?!".into())
    );

    let decisions = Decisions::new(store);
    let username = format!("ada{run}");
    println!("\n8 users race for the username `{username}`.");
    let racers: Vec<_> = (0..8)
        .map(|user| {
            let (decisions, username) = (decisions.clone(), username.clone());
            tokio::spawn(async move {
                let command = RegisterUser {
                    user: format!("{user}{}", uuid::Uuid::new_v4().simple()),
                    username,
                };
                decisions
                    .execute::<ClaimUsername>(&command, Metadata::new())
                    .await
            })
        })
        .collect();
    let (mut won, mut taken) = (0, 0);
    for racer in racers {
        match racer.await? {
            Ok(_) => won += 1,
            Err(DecisionError::Rejected(UsernameError::Taken(_))) => taken += 1,
            Err(other) => return Err(other.into()),
        }
    }
    println!("{won} registered it, {taken} were told it is taken.");
    if won != 1 {
        return Err(format!("{won} users hold the username").into());
    }
    Ok(())
}

fn cents(amount: u64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}
