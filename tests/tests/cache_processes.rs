//! The aggregate cache across processes: two processes, each with its own cached repository, count the same
//! streams. Every acknowledged command is stored once (no lost update), and every stored event was decided on the
//! state right before it (no decision on stale state ever committed), although each process's cache went stale
//! again and again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::{EventStore, StreamId, StreamRead};
use tests::child::ChildProcess;
use tests::pg_store;
use tests::tally::TallyEvent;

const STREAMS: u64 = 4;
const COMMANDS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_with_their_own_caches_lose_no_update_and_never_commit_a_stale_decision() {
    let store = pg_store().await;
    let schema = store.schema().as_str().to_owned();
    let commands = COMMANDS.to_string();
    let streams = STREAMS.to_string();
    let writers: Vec<ChildProcess> = ["1", "2"]
        .iter()
        .map(|seed| {
            ChildProcess::spawn(
                env!("CARGO_BIN_EXE_cached_writer"),
                &[&schema, seed, &commands, &streams],
            )
        })
        .collect();
    let (mut succeeded, mut again) = (0, 0);
    for writer in writers {
        let report = writer.line_starting_with("done ", Duration::from_secs(120));
        let numbers: Vec<u64> = report.split(' ').map(|n| n.parse().unwrap()).collect();
        succeeded += numbers[0];
        again += numbers[1];
        assert_eq!(numbers[0] + numbers[2], COMMANDS, "{report}");
        writer.finish(Duration::from_secs(30));
    }
    assert!(
        again > 0,
        "the caches never went stale: the test proved nothing"
    );

    let mut stored = 0;
    for n in 0..STREAMS {
        let stream = StreamId::new(format!("tally-{n}")).unwrap();
        let events = store
            .read_stream(&stream, StreamRead::forward())
            .await
            .unwrap();
        for (index, event) in events.iter().enumerate() {
            let version = index as u64 + 1;
            assert_eq!(event.version.get(), version);
            let TallyEvent::Counted { seen } = event.decode::<TallyEvent>().unwrap();
            assert_eq!(
                seen,
                version - 1,
                "{stream}@{version} was decided on the state at version {seen}"
            );
        }
        stored += events.len() as u64;
    }
    assert_eq!(
        stored, succeeded,
        "acknowledged commands and stored events differ"
    );
}
