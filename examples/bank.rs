//! The bank example: an account's life, told through commands and the events they leave behind.
//!
//! Run it from the workspace root, on the in-memory store:
//! ```text
//! cargo run --example bank
//! ```
//! or on PostgreSQL (tables in schema `bank`, created on first run), with the same code:
//! ```text
//! cargo run --example bank -- --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! ```
//! (`BANK_DATABASE_URL` works as well as the flag; `BANK_SCHEMA` picks another schema), or in a SQLite file,
//! created on the first run; every run adds its account to the same history:
//! ```text
//! cargo run --example bank -- --sqlite bank.db
//! ```

use es_core::aggregate::{RepositoryError, SnapshotPolicy, SnapshotStore};
use es_core::{EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StreamRead};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand, AccountError, connect_postgres};
use examples::store_choice::{StoreChoice, open_sqlite, run_suffix};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let choice = StoreChoice::from_args(
        std::env::args().skip(1),
        std::env::var("BANK_DATABASE_URL").ok(),
    )
    .map_err(|usage| format!("usage: bank {usage}"))?;
    match choice {
        StoreChoice::Memory => {
            println!("Store: in memory.\n");
            story(InMemoryEventStore::new(), "ada").await
        }
        StoreChoice::Postgres(url) => {
            let (store, schema) = connect_postgres(&url).await?;
            println!("Store: PostgreSQL, schema `{schema}`.\n");
            // A fresh account per run, so the story can be told again on the same database.
            story(store, &format!("ada{}", run_suffix())).await
        }
        StoreChoice::Sqlite(file) => {
            let store = open_sqlite(&file).await?;
            story(store, &format!("ada{}", run_suffix())).await
        }
    }
}

async fn story<S>(store: S, id: &str) -> Result<(), Box<dyn std::error::Error>>
where
    S: EventStore + SnapshotStore + Clone + 'static,
{
    // Events written by older releases are upcast as they are read (`AccountEvent` names its upcasters); a
    // snapshot every 100 events keeps loads short.
    let accounts = Repository::<Account, _>::new(store.clone())
        .with_snapshots(store, SnapshotPolicy::every(100));

    // One correlation id for this "request": every event below carries it.
    let request = Metadata::new()
        .with_correlation_id(Uuid::now_v7())
        .with("user", "teller-7");

    println!("Ada opens account `{id}` and pays in 100.00.");
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    accounts.execute(id, &open, request.clone()).await?;
    accounts
        .execute(
            id,
            &AccountCommand::Deposit {
                amount: dollars(100),
            },
            request.clone(),
        )
        .await?;

    println!("She takes out 30.00.");
    accounts
        .execute(
            id,
            &AccountCommand::Withdraw {
                amount: dollars(30),
            },
            request.clone(),
        )
        .await?;

    println!("She tries to take out 500.00; the account refuses:");
    match accounts
        .execute(
            id,
            &AccountCommand::Withdraw {
                amount: dollars(500),
            },
            request.clone(),
        )
        .await
    {
        Err(RepositoryError::Rejected {
            source: AccountError::InsufficientFunds { balance, requested },
            ..
        }) => {
            println!(
                "  insufficient funds: balance {}, requested {}",
                money(balance),
                money(requested)
            );
        }
        other => return Err(format!("expected a rejection, got {other:?}").into()),
    }

    println!("She empties and closes the account.");
    accounts
        .execute(
            id,
            &AccountCommand::Withdraw {
                amount: dollars(70),
            },
            request.clone(),
        )
        .await?;
    let closed = accounts
        .execute(id, &AccountCommand::Close, request)
        .await?;
    println!("\nState at version {}: {:?}", closed.version, closed.state);

    let stream = Repository::<Account, S>::stream_id(id)?;
    println!("\nStream `{stream}`:");
    for event in accounts
        .store()
        .read_stream(&stream, StreamRead::forward())
        .await?
    {
        println!(
            "  v{} @{}  {:<10} {}",
            event.version, event.position, event.event_type, event.payload
        );
    }

    println!(
        "\nFrom the archives: an account opened by release 0.1, whose `Opened` (v1) named its `holder`."
    );
    let grace = format!("grace-{id}");
    let old = NewEvent::new("Opened", 1, serde_json::json!({ "holder": "Grace" }));
    let archived = Repository::<Account, S>::stream_id(&grace)?;
    accounts
        .store()
        .append(&archived, ExpectedVersion::NoStream, vec![old])
        .await?;
    let loaded = accounts.load(&grace).await?;
    println!(
        "Read through the upcaster to today's v2: owner {:?}.",
        loaded.state.owner
    );
    Ok(())
}

/// Amounts are in cents.
fn dollars(whole: u64) -> u64 {
    whole * 100
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
