//! A writer process for the two-process cache test: runs `commands` commands, spread over `streams` shared tally
//! streams, through a repository with the aggregate cache on (the default), then prints
//! `done <succeeded> <decided again> <gave up>`.
//!
//! `cached_writer <schema> <seed> <commands> <streams>`; the database is `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::aggregate::RepositoryError;
use es_core::{Metadata, Repository};
use es_postgres::PgEventStore;
use tests::database_url;
use tests::tally::Tally;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, schema, seed, commands, streams] = &args[..] else {
        panic!("usage: cached_writer <schema> <seed> <commands> <streams>");
    };
    let (seed, commands, streams): (u64, u64, u64) = (
        seed.parse().unwrap(),
        commands.parse().unwrap(),
        streams.parse().unwrap(),
    );
    let store = PgEventStore::builder()
        .schema(schema)
        .connect(&database_url())
        .await
        .unwrap();
    let tallies = Repository::<Tally, _>::new(store);
    let (mut succeeded, mut again, mut gave_up) = (0, 0, 0);
    let mut state = seed;
    for _ in 0..commands {
        // A small LCG: both processes wander over the same streams in different orders.
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let stream = (state >> 33) % streams;
        match tallies
            .execute(&stream.to_string(), &(), Metadata::new())
            .await
        {
            Ok(done) => {
                succeeded += 1;
                again += done.attempts - 1;
            }
            Err(RepositoryError::TooManyConflicts { attempts, .. }) => {
                gave_up += 1;
                again += attempts - 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    println!("done {succeeded} {again} {gave_up}");
}
