//! Loading (rehydrating) a 10,000-event aggregate, with and without a snapshot, against a plain fold or a raw
//! select of the same events.

use std::time::{Duration, Instant};

use es_core::aggregate::{Snapshot, SnapshotPolicy, SnapshotStore, Snapshotting};
use es_core::{
    Aggregate, DomainEvent, EventStore, ExpectedVersion, NewEvent, Repository, StreamId,
    StreamRead, Version,
};
use examples::bank::{Account, AccountEvent};

use crate::report::Figure;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs per figure; the median is reported.
const RUNS: usize = 7;

/// Writes `events` account events (opened, then deposits) in batches of 100, and a snapshot 100 events before the
/// end, the way `SnapshotPolicy::every(100)` would have left it.
pub(crate) async fn prepare<S: EventStore + SnapshotStore>(
    store: &S,
    id: &str,
    events: u64,
) -> Result<(), Error> {
    let stream = StreamId::for_aggregate(Account::CATEGORY, id)?;
    let mut state = Account::default();
    let mut version = 0;
    while version < events {
        let batch: Vec<AccountEvent> = (version..(version + 100).min(events))
            .map(|v| {
                if v == 0 {
                    AccountEvent::Opened {
                        owner: "Ada".into(),
                    }
                } else {
                    AccountEvent::Deposited { amount: 1 }
                }
            })
            .collect();
        let new = batch
            .iter()
            .map(|e| NewEvent::from_domain(e, Default::default()))
            .collect::<Result<Vec<_>, _>>()?;
        store
            .append(&stream, ExpectedVersion::Exact(Version::new(version)), new)
            .await?;
        state = batch.iter().fold(state, Account::apply);
        version += batch.len() as u64;
        if version == events - 100 {
            let snapshot = Snapshot {
                stream_id: stream.clone(),
                snapshot_type: Account::SNAPSHOT_TYPE.to_owned(),
                schema_version: Account::SNAPSHOT_VERSION,
                version: Version::new(version),
                state: serde_json::to_value(state.to_snapshot())?,
            };
            store.save_snapshot(snapshot).await?;
        }
    }
    Ok(())
}

/// Median time to load `id` without and with its snapshot.
pub(crate) async fn load_times<S: EventStore + SnapshotStore + Clone + 'static>(
    store: &S,
    id: &str,
) -> Result<(Duration, Duration), Error> {
    let plain = Repository::<Account, _>::new(store.clone());
    let snapshots = Repository::<Account, _>::new(store.clone())
        .with_snapshots(store.clone(), SnapshotPolicy::Never);
    let without = median(|| async { plain.load(id).await.map(drop).map_err(Error::from) }).await?;
    let with = median(|| async { snapshots.load(id).await.map(drop).map_err(Error::from) }).await?;
    Ok((without, with))
}

/// Median time of a plain fold: decode each stored event and apply it, from a `Vec` already in memory.
pub(crate) async fn plain_fold<S: EventStore>(store: &S, id: &str) -> Result<Duration, Error> {
    let stream = StreamId::for_aggregate(Account::CATEGORY, id)?;
    let events = store.read_stream(&stream, StreamRead::forward()).await?;
    median(|| async {
        let mut state = Account::default();
        for event in &events {
            state = state.apply(&event.decode::<AccountEvent>()?);
        }
        std::hint::black_box(state);
        Ok(())
    })
    .await
}

/// Decodes raw rows (type, schema version, payload text) with serde straight into the typed event and folds them:
/// the floor under a load.
pub(crate) fn fold_raw<'r>(
    rows: impl IntoIterator<Item = (&'r str, i64, &'r str)>,
) -> Result<Account, Error> {
    let mut account = Account::default();
    for (event_type, version, payload) in rows {
        let event = AccountEvent::decode_str(event_type, u32::try_from(version)?, payload)?;
        account = account.apply(&event);
    }
    Ok(account)
}

pub(crate) async fn median<F, Fut>(mut run: F) -> Result<Duration, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        run().await?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(times[RUNS / 2])
}

/// The three load figures of one store.
pub(crate) fn figures(
    store: &str,
    without: Duration,
    with: Duration,
    baseline_name: &str,
    baseline: Duration,
) -> Vec<Figure> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    vec![
        Figure::new(
            format!("{store}: load 10,000-event aggregate, no snapshot"),
            ms(without),
            "ms",
        )
        .against(baseline_name, ms(baseline))
        .note("median of 7"),
        Figure::new(
            format!("{store}: load 10,000-event aggregate, snapshot 100 events back"),
            ms(with),
            "ms",
        )
        .against(format!("{store}: same load without snapshot"), ms(without))
        .note("median of 7"),
    ]
}

/// The in-memory figures.
pub(crate) async fn memory() -> Result<Vec<Figure>, Error> {
    let store = es_memory::InMemoryEventStore::new();
    prepare(&store, "load", 10_000).await?;
    let (without, with) = load_times(&store, "load").await?;
    let fold = plain_fold(&store, "load").await?;
    Ok(figures(
        "memory",
        without,
        with,
        "decode + fold of a Vec",
        fold,
    ))
}
