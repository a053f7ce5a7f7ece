//! Round trips per command on PostgreSQL, counted on the wire by a proxy: with a warm aggregate cache an execute is
//! exactly one round trip (the append); a cold one reads the stream first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::aggregate::DEFAULT_CACHE_CAPACITY;
use es_core::{Metadata, Repository};
use es_postgres::PgEventStore;
use examples::bank::{Account, AccountCommand};
use sqlx::postgres::PgPoolOptions;
use tests::fresh_schema;
use tests::wire::{CountingProxy, PING};

/// The round trips seen since `since` (after letting the background ones land), split by who made them.
struct Trips {
    /// The caller's own statements.
    caller: Vec<String>,
    /// sqlx's pings of pooled connections handed back (in the background).
    pings: usize,
    /// The debounced wake-up notifications (in the background).
    notifies: usize,
    /// Everything, for failure messages.
    all: Vec<String>,
}

async fn trips(proxy: &CountingProxy, since: usize) -> Trips {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let all = proxy.since(since);
    let notify = |sql: &String| sql.contains("pg_notify");
    Trips {
        caller: all
            .iter()
            .filter(|sql| !notify(sql) && *sql != PING)
            .cloned()
            .collect(),
        pings: all.iter().filter(|sql| *sql == PING).count(),
        notifies: all.iter().filter(|sql| notify(sql)).count(),
        all,
    }
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
    let warm = trips(&proxy, before).await;
    assert_eq!(warm.caller.len(), 20, "{:#?}", warm.all);
    // The only pooled connection use meanwhile is the notifier's, pinged by sqlx when handed back.
    assert!(warm.pings <= warm.notifies, "{:#?}", warm.all);
    assert!(
        warm.caller.iter().all(|sql| sql.contains("append_one")),
        "{:#?}",
        warm.all
    );

    // Cold: a read on a pooled connection (which sqlx pings in the background when it is handed back), then the
    // append.
    let before = proxy.count();
    accounts
        .execute("cold", &open, Metadata::new())
        .await
        .unwrap();
    let cold = trips(&proxy, before).await;
    assert_eq!(cold.caller.len(), 2, "{:#?}", cold.all);
    assert_eq!(
        cold.pings,
        1 + cold.notifies,
        "the read's connection, and the notifier's: {:#?}",
        cold.all
    );
    assert!(
        cold.caller[0].contains("FROM") && cold.caller[1].contains("append_one"),
        "{:#?}",
        cold.all
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
    let stale = trips(&proxy, before).await.caller;
    assert_eq!((done.attempts, done.state.balance), (2, 24));
    assert_eq!(stale.len(), 3, "refused append, read, append: {stale:#?}");
}
