//! The consistency race suite (`es_core::consistency_race_tests!`) on every store, 200 rounds per case: run it
//! against your own PostgreSQL with `DATABASE_URL=postgres://... cargo test -p tests --test consistency_races`
//! (`RACE_ROUNDS` changes the rounds). Each round: one winner per boundary, every loser a typed error, nothing
//! stored in part.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Rounds per case: `RACE_ROUNDS`, 200 by default.
fn rounds() -> usize {
    std::env::var("RACE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
}

mod memory {
    es_core::consistency_race_tests!(
        || async { es_memory::InMemoryEventStore::new() },
        super::rounds()
    );
}

mod sqlite {
    es_core::consistency_race_tests!(tests::sqlite_store, super::rounds());
}

mod postgres {
    es_core::consistency_race_tests!(tests::pg_store, super::rounds());
}
