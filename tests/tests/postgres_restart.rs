//! A server restart between commands, on a private PostgreSQL the test starts itself: the store's connections
//! (pooled, not pinged before use; and its own append connections) are all dead afterwards, and the next commands
//! and reads still succeed, each writing exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::{EventStore, Metadata, Position, Repository};
use examples::bank::{Account, AccountCommand};
use tests::private_pg::PrivatePostgres;

/// How long a command or a load may take after the restart.
const BOUND: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_reads_go_on_after_a_server_restart() {
    let server = PrivatePostgres::start();
    let store = server.store().await;
    let accounts = Repository::<Account, _>::new(store.clone());
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    let deposit = AccountCommand::Deposit { amount: 1 };
    accounts.execute("a", &open, Metadata::new()).await.unwrap();
    for _ in 0..5 {
        accounts
            .execute("a", &deposit, Metadata::new())
            .await
            .unwrap();
    }
    // Every pooled connection used once, so all of them are idle and dead after the restart.
    let loads: Vec<_> = (0..4).map(|_| accounts.clone().with_cache(0)).collect();
    for repository in &loads {
        repository.load("a").await.unwrap();
    }

    server.restart();

    let done = tokio::time::timeout(BOUND, accounts.execute("a", &deposit, Metadata::new()))
        .await
        .expect("the command hung")
        .unwrap();
    assert_eq!((done.version.get(), done.state.balance), (7, 6));
    for repository in &loads {
        let loaded = tokio::time::timeout(BOUND, repository.load("a"))
            .await
            .expect("the load hung")
            .unwrap();
        assert_eq!((loaded.version.get(), loaded.state.balance), (7, 6));
    }
    let all = store.read_all(Position::START, 100).await.unwrap();
    assert_eq!(all.len(), 7, "an append was written twice or lost");
}
