//! Round trips per command on PostgreSQL, counted on the wire by a proxy: with a warm aggregate cache an execute is
//! exactly one round trip (the append); a cold one reads the stream first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::{DEFAULT_CACHE_CAPACITY, Metadata, Repository};
use es_postgres::PgEventStore;
use examples::bank::{Account, AccountCommand};
use sqlx::postgres::PgPoolOptions;
use tests::fresh_schema;
use tests::wire::{CountingProxy, PING};

/// The round trips since `since`, leaving out the debounced wake-up notifications sent in the background.
fn trips(proxy: &CountingProxy, since: usize) -> Vec<String> {
    proxy
        .since(since)
        .into_iter()
        .filter(|sql| !sql.contains("pg_notify"))
        .collect()
}

#[tokio::test]
async fn a_command_on_a_cached_aggregate_is_one_round_trip_and_a_cold_one_is_two() {
    let proxy = CountingProxy::start().await;
    // One pooled connection, so that every statement is prepared during the warm-up (a new connection prepares
    // each statement once: one round trip more, once).
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(proxy.connect_options())
        .await
        .unwrap();
    let store = PgEventStore::builder()
        .schema(fresh_schema())
        .build(pool)
        .unwrap();
    store.migrate().await.unwrap();
    let accounts = Repository::<Account, _>::new(store);
    let open = AccountCommand::Open {
        owner: "Ada".into(),
    };
    let deposit = AccountCommand::Deposit { amount: 1 };
    // Warm up: every statement prepared once on each connection it will use.
    accounts
        .clone()
        .with_cache(0)
        .execute("warm", &open, Metadata::new())
        .await
        .unwrap();
    accounts
        .execute("warm", &deposit, Metadata::new())
        .await
        .unwrap();
    accounts
        .execute("warm", &deposit, Metadata::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let before = proxy.count();
    for _ in 0..20 {
        accounts
            .execute("warm", &deposit, Metadata::new())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let all = proxy.since(before);
    let notifies = all.iter().filter(|sql| sql.contains("pg_notify")).count();
    let pings = all.iter().filter(|sql| *sql == PING).count();
    let warm: Vec<_> = trips(&proxy, before)
        .into_iter()
        .filter(|sql| sql != PING)
        .collect();
    assert_eq!(warm.len(), 20, "{all:#?}");
    // The only pooled connection use meanwhile is the notifier's, pinged by sqlx when handed back.
    assert!(pings <= notifies, "{all:#?}");
    assert!(
        warm.iter().all(|sql| sql.contains("append_one")),
        "{warm:#?}"
    );

    // Cold: a read on a pooled connection (which sqlx pings in the background when it is handed back), then the
    // append.
    let before = proxy.count();
    accounts
        .execute("cold", &open, Metadata::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let all = proxy.since(before);
    let notifies = all.iter().filter(|sql| sql.contains("pg_notify")).count();
    let cold = trips(&proxy, before);
    let (pings, caller): (Vec<_>, Vec<_>) = cold.iter().partition(|sql| *sql == PING);
    assert_eq!(caller.len(), 2, "{all:#?}");
    assert_eq!(
        pings.len(),
        1 + notifies,
        "the read's connection, and the notifier's: {all:#?}"
    );
    assert!(
        caller[0].contains("FROM") && caller[1].contains("append_one"),
        "{cold:#?}"
    );
    assert_eq!(accounts.load("warm").await.unwrap().state.balance, 22);

    // Another process (here: a repository with a cache of its own) wrote meanwhile: the stale decision is refused
    // by the store, and the command is decided again on fresh state.
    let other = accounts.clone().with_cache(DEFAULT_CACHE_CAPACITY);
    other
        .execute("warm", &deposit, Metadata::new())
        .await
        .unwrap();
    let before = proxy.count();
    let done = accounts
        .execute("warm", &deposit, Metadata::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stale: Vec<_> = trips(&proxy, before)
        .into_iter()
        .filter(|sql| sql != PING)
        .collect();
    assert_eq!((done.attempts, done.state.balance), (2, 24));
    assert_eq!(stale.len(), 3, "refused append, read, append: {stale:#?}");
}
