//! The bank example: an account's life, told through commands and the events they leave behind.
//!
//! Run it from the workspace root:
//! ```text
//! cargo run --example bank
//! ```

use es_core::{EventStore, Metadata, Repository, RepositoryError, StreamRead};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand, AccountError};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let accounts = Repository::<Account, _>::new(InMemoryEventStore::new());
    // One correlation id for this "request": every event below carries it.
    let request = Metadata::new()
        .with_correlation_id(Uuid::now_v7())
        .with("user", "teller-7");

    println!("Ada opens an account and pays in 100.00.");
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    accounts.execute("ada", &open, request.clone()).await?;
    accounts
        .execute(
            "ada",
            &AccountCommand::Deposit {
                amount: dollars(100),
            },
            request.clone(),
        )
        .await?;

    println!("She takes out 30.00.");
    accounts
        .execute(
            "ada",
            &AccountCommand::Withdraw {
                amount: dollars(30),
            },
            request.clone(),
        )
        .await?;

    println!("She tries to take out 500.00; the account refuses:");
    match accounts
        .execute(
            "ada",
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
            "ada",
            &AccountCommand::Withdraw {
                amount: dollars(70),
            },
            request.clone(),
        )
        .await?;
    let closed = accounts
        .execute("ada", &AccountCommand::Close, request)
        .await?;
    println!("\nState at version {}: {:?}", closed.version, closed.state);

    let stream = Repository::<Account, InMemoryEventStore>::stream_id("ada")?;
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
    Ok(())
}

/// Amounts are in cents.
fn dollars(whole: u64) -> u64 {
    whole * 100
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
