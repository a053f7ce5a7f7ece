//! Compile-time proof that stores, repositories and their futures can cross threads (tokio::spawn needs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::store::EventStream;
use es_core::{EventStore, Metadata, Repository};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand};

fn send_sync<T: Send + Sync>(_: &T) {}
fn send<T: Send>(_: &T) {}

#[test]
fn stores_repositories_and_futures_are_send_and_sync() {
    let store = InMemoryEventStore::new();
    send_sync(&store);
    let repository = Repository::<Account, _>::new(store.clone());
    send_sync(&repository);
    let command = AccountCommand::Close;
    send(&repository.execute("a", &command, Metadata::new()));
    send(&repository.load("a"));
    let stream: EventStream = store.subscribe_all(es_core::Position::START);
    send(&stream);
    let dyn_store: std::sync::Arc<dyn EventStore> = std::sync::Arc::new(store);
    send_sync(&dyn_store);
}

/// Never run: only compiled, to prove the PostgreSQL store's futures are `Send`.
#[allow(dead_code)]
fn postgres_store_futures_are_send(store: es_postgres::PgEventStore) {
    send_sync(&store);
    send(&store.migrate());
    send(&es_postgres::PgEventStore::connect("postgres://"));
    let repository = Repository::<Account, _>::new(store.clone());
    let command = AccountCommand::Close;
    send(&repository.execute("a", &command, Metadata::new()));
    send(&store.subscribe_all(es_core::Position::START));
}
