//! The read-model example: commands on a few accounts, a projection keeping balances and a per-day summary, read
//! your own write, then a rebuild that empties the read model and replays every event into it.
//!
//! In memory:
//! ```text
//! cargo run --example read_model
//! ```
//! On PostgreSQL (store and read-model tables in schema `bank`, or `BANK_SCHEMA`), exactly-once:
//! ```text
//! cargo run --example read_model -- --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! ```
//! In a SQLite file (store and read model in the one file), exactly-once; a second run adds its accounts to the
//! first run's, and the projection goes on from its checkpoint:
//! ```text
//! cargo run --example read_model -- --sqlite bank.db
//! ```

use std::future::Future;
use std::time::Duration;

use es_core::projection::{ProjectionOptions, RunningProjections};
use es_core::{EventStore, Metadata, ProjectionRunner, Repository};
use es_memory::InMemoryEventStore;
use es_postgres::PgProjectionWorker;
use es_sqlite::SqliteProjectionWorker;
use examples::bank::{Account, AccountCommand, connect_postgres};
use examples::read_model::{MemoryBalances, PgBalances, ReadModel, SqliteBalances};
use examples::store_choice::{StoreChoice, open_sqlite, run_suffix};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let choice = StoreChoice::from_args(std::env::args().skip(1), None)
        .map_err(|usage| format!("usage: read_model {usage}"))?;
    match choice {
        StoreChoice::Memory => in_memory().await,
        StoreChoice::Postgres(url) => on_postgres(&url).await,
        StoreChoice::Sqlite(file) => on_sqlite(&file).await,
    }
}

async fn in_memory() -> Result<(), Error> {
    println!("Store and read model: in memory (at-least-once, de-duplicated by event id).\n");
    let store = InMemoryEventStore::new();
    let balances = MemoryBalances::default();
    let running = ProjectionRunner::new(store.clone())
        .with_projection(
            balances.clone(),
            store.clone(),
            ProjectionOptions::default(),
        )
        .start();
    let accounts = Repository::<Account, _>::new(store.clone());
    story(&accounts, &running, "").await?;
    rebuild_and_compare(&store, running, || async { Ok(balances.snapshot()) }).await
}

async fn on_postgres(url: &str) -> Result<(), Error> {
    let (store, schema) = connect_postgres(url).await?;
    println!("Store and read model: PostgreSQL, schema `{schema}` (exactly-once).\n");
    let read_model = PgBalances::new(&schema)?;
    read_model.create_tables(store.pool()).await?;
    let running = ProjectionRunner::new(store.clone())
        .with(PgProjectionWorker::new(
            &store,
            read_model.clone(),
            ProjectionOptions::default(),
        ))
        .start();
    let accounts = Repository::<Account, _>::new(store.clone());
    story(&accounts, &running, &run_suffix()).await?;
    rebuild_and_compare(&store, running, || async {
        Ok(read_model.read(store.pool()).await?)
    })
    .await
}

async fn on_sqlite(file: &std::path::Path) -> Result<(), Error> {
    let store = open_sqlite(file).await?;
    println!("Read model: tables in the same file, written with its checkpoint (exactly-once).\n");
    SqliteBalances.create_tables(&store).await?;
    let running = ProjectionRunner::new(store.clone())
        .with(SqliteProjectionWorker::new(
            &store,
            SqliteBalances,
            ProjectionOptions::default(),
        ))
        .start();
    let accounts = Repository::<Account, _>::new(store.clone());
    story(&accounts, &running, &run_suffix()).await?;
    rebuild_and_compare(&store, running, || async {
        Ok(SqliteBalances.read(&store).await?)
    })
    .await
}

/// Prints the read model, rebuilds it from the events, and says whether the rebuild came out the same.
async fn rebuild_and_compare<S, F, Fut>(
    store: &S,
    running: RunningProjections,
    read: F,
) -> Result<(), Error>
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<ReadModel, Error>>,
{
    let before = read().await?;
    print(&before);
    running.rebuild("balances").await?;
    if let Some(head) = store.head().await? {
        running
            .wait_for("balances", head, Duration::from_secs(10))
            .await?;
    }
    let after = read().await?;
    println!(
        "\nRebuilt from the events: {}",
        if after == before {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    running.shutdown().await;
    Ok(())
}

/// Commands on three accounts; after the last one, read your own write.
async fn story<S: EventStore>(
    accounts: &Repository<Account, S>,
    running: &RunningProjections,
    suffix: &str,
) -> Result<(), Error> {
    // Amounts in cents.
    let mut last = None;
    for (owner, deposits, withdrawal) in [
        ("ada", [12_000, 3_000], 5_000),
        ("bob", [1_000, 500], 1_500),
        ("eve", [9_900, 100], 0),
    ] {
        let id = format!("{owner}{suffix}");
        let mut commands = vec![AccountCommand::Open {
            owner: owner.into(),
        }];
        commands.extend(deposits.map(|amount| AccountCommand::Deposit { amount }));
        if withdrawal > 0 {
            commands.push(AccountCommand::Withdraw { amount: withdrawal });
        }
        for command in &commands {
            let done = accounts.execute(&id, command, Metadata::new()).await?;
            last = done.append.map(|a| a.last_position).or(last);
        }
    }
    if let Some(position) = last {
        running
            .wait_for("balances", position, Duration::from_secs(10))
            .await?;
        println!("The read model has caught up with the last command (position {position}).");
    }
    Ok(())
}

fn print(model: &ReadModel) {
    println!("\nBalances:");
    for (account, balance) in &model.balances {
        println!("  {account:<20} {:>8}.{:02}", balance / 100, balance % 100);
    }
    println!("Per day:");
    for (day, summary) in &model.days {
        println!(
            "  {day}  in {:>6}.{:02}  out {:>6}.{:02}  ({} transactions)",
            summary.deposited / 100,
            summary.deposited % 100,
            summary.withdrawn / 100,
            summary.withdrawn % 100,
            summary.transactions
        );
    }
}
