//! The consistency race suite: conditional (DCB) and multi-stream appends raced the ways other stores shipped
//! races (barriered racers, staggered racers, distinct streams sharing a tag, racers sharing only a type, one
//! boundary read twice, multi-stream against single appends). Each case runs `rounds` rounds; in each, exactly one
//! racer wins its boundary, every loser gets a typed error, and nothing is stored in part. Run by
//! [`consistency_race_tests!`](crate::consistency_race_tests).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Barrier;

use crate::store::{
    AppendCondition, EventStore, ExpectedVersion, MultiAppend, NewEvent, Query, QueryItem,
    StoreError, StreamId,
};

/// Racers per round.
const RACERS: usize = 8;

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid test stream id")
}

fn claimed(event_type: &str, racer: usize, tags: &[String]) -> NewEvent {
    NewEvent::new(event_type.to_owned(), 1, json!({ "racer": racer }))
        .with_tags(tags.iter().cloned())
}

/// A unique tag for one round of one case.
fn tag(case: &str, round: usize) -> String {
    format!("{case}:{}-{round}", uuid::Uuid::new_v4().simple())
}

/// Reads `query`; when nothing matches, appends `event` to `target` on the condition that nothing matching arrived
/// since. `Ok(true)`: won; `Ok(false)`: the read saw a winner; `Err`: the append's error.
async fn claim<S: EventStore>(
    store: &S,
    query: &Query,
    target: StreamId,
    event: NewEvent,
    barrier: Option<&Barrier>,
) -> Result<bool, StoreError> {
    let read = store.read_query(query, None).await?;
    if let Some(barrier) = barrier {
        barrier.wait().await;
    }
    if !read.events.is_empty() {
        return Ok(false);
    }
    let append = MultiAppend::new()
        .append(target, ExpectedVersion::Any, vec![event])
        .condition(AppendCondition::new(query.clone(), read.after));
    store.append_multi(append).await.map(|_| true)
}

/// Counts the outcomes of one round's racers: exactly one win, every other racer a condition failure (or a read
/// that saw the winner), and exactly one event stored in the racers' streams.
async fn settle<S: EventStore>(
    store: &S,
    targets: &[StreamId],
    outcomes: Vec<Result<bool, StoreError>>,
    case: &str,
    round: usize,
) {
    let mut wins = 0;
    for outcome in outcomes {
        match outcome {
            Ok(true) => wins += 1,
            Ok(false) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(other) => panic!("{case}, round {round}: a racer failed with {other}"),
        }
    }
    let mut stored = 0;
    for target in targets {
        stored += store
            .read_stream(target, crate::store::StreamRead::forward())
            .await
            .expect("read")
            .len();
    }
    assert_eq!(
        (wins, stored),
        (1, 1),
        "{case}, round {round}: {wins} racers won, {stored} events stored"
    );
}

/// Reads `query` until it returns `count` events: a store reads only what nothing can commit behind (PostgreSQL:
/// below its oldest running transaction), so a commit shows after the transactions running before it end. Bounded:
/// 10 s.
async fn visible<S: EventStore>(store: &S, query: &Query, count: usize) -> crate::store::QueryRead {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = store.read_query(query, None).await.expect("read");
        if read.events.len() >= count || tokio::time::Instant::now() > deadline {
            assert_eq!(
                read.events.len(),
                count,
                "the query reads what was committed"
            );
            return read;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn race<S, F>(store: &S, query: &Query, rounds_racer: F, case: &str, round: usize)
where
    S: EventStore + Clone + 'static,
    F: Fn(usize) -> (StreamId, NewEvent),
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut targets = Vec::with_capacity(RACERS);
    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let (store, query, barrier) = (store.clone(), query.clone(), Arc::clone(&barrier));
            let (target, event) = rounds_racer(racer);
            targets.push(target.clone());
            tokio::spawn(async move { claim(&store, &query, target, event, Some(&barrier)).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(RACERS);
    for task in tasks {
        outcomes.push(task.await.expect("racer"));
    }
    settle(store, &targets, outcomes, case, round).await;
}

/// All racers read the boundary (empty), wait for each other, then append at once, each to its own stream
/// (Marten #4591's shape): one wins.
pub async fn barriered_racers_have_one_winner<S: EventStore + Clone + 'static>(
    store: S,
    rounds: usize,
) {
    for round in 0..rounds {
        let t = tag("username", round);
        let query = Query::new().item(QueryItem::types(["Registered"]).and_tags([t.clone()]));
        let tags = [t.clone()];
        race(
            &store,
            &query,
            |racer| {
                (
                    stream(&format!("user-{round}-{racer}")),
                    claimed("Registered", racer, &tags),
                )
            },
            "barriered",
            round,
        )
        .await;
    }
}

/// Racers read and append at staggered moments, so one commits while others are between their read and their
/// append, or in the middle of their read (Marten #5300's shape): one wins.
pub async fn staggered_racers_have_one_winner<S: EventStore + Clone + 'static>(
    store: S,
    rounds: usize,
) {
    for round in 0..rounds {
        let t = tag("seat", round);
        let query = Query::new().item(QueryItem::tags([t.clone()]));
        let targets: Vec<StreamId> = (0..RACERS)
            .map(|racer| stream(&format!("seat-{round}-{racer}")))
            .collect();
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let (store, query) = (store.clone(), query.clone());
                let event = claimed("SeatTaken", racer, std::slice::from_ref(&t));
                let target = targets[racer].clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2_000))).await;
                    claim(&store, &query, target, event, None).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(RACERS);
        for task in tasks {
            outcomes.push(task.await.expect("racer"));
        }
        settle(&store, &targets, outcomes, "staggered", round).await;
    }
}

/// A racer that commits after another's read makes that one's append fail, deterministically: read, another
/// commits, append.
pub async fn a_commit_after_the_read_fails_the_append<S: EventStore>(store: S, rounds: usize) {
    for round in 0..rounds {
        let t = tag("course", round);
        let query = Query::new().item(QueryItem::types(["Enrolled"]).and_tags([t.clone()]));
        let slow = store.read_query(&query, None).await.expect("read");
        assert!(
            claim(
                &store,
                &query,
                stream(&format!("fast-{round}")),
                claimed("Enrolled", 0, std::slice::from_ref(&t)),
                None
            )
            .await
            .expect("the fast racer")
        );
        let late = store
            .append_multi(
                MultiAppend::new()
                    .append(
                        stream(&format!("slow-{round}")),
                        ExpectedVersion::Any,
                        vec![claimed("Enrolled", 1, std::slice::from_ref(&t))],
                    )
                    .condition(AppendCondition::new(query.clone(), slow.after)),
            )
            .await;
        assert!(
            matches!(late, Err(StoreError::ConditionFailed { .. })),
            "round {round}: {late:?}"
        );
        visible(&store, &query, 1).await;
    }
}

/// Racers append to distinct streams, sharing one tag, conditioned on the tag alone: one wins.
pub async fn racers_on_distinct_streams_sharing_a_tag_have_one_winner<
    S: EventStore + Clone + 'static,
>(
    store: S,
    rounds: usize,
) {
    for round in 0..rounds {
        let t = tag("shared", round);
        let query = Query::new().item(QueryItem::tags([t.clone()]));
        let tags = [t.clone(), format!("racer-tag-{round}")];
        race(
            &store,
            &query,
            |racer| {
                (
                    stream(&format!("tagged-{round}-{racer}")),
                    claimed(&format!("Kind{}", racer % 3), racer, &tags),
                )
            },
            "shared tag",
            round,
        )
        .await;
    }
}

/// Racers share only an event type (no tag), the condition names the type alone: one wins.
pub async fn racers_sharing_only_a_type_have_one_winner<S: EventStore + Clone + 'static>(
    store: S,
    rounds: usize,
) {
    for round in 0..rounds {
        let event_type = format!("Opened{}", uuid::Uuid::new_v4().simple());
        let query = Query::new().item(QueryItem::types([event_type.clone()]));
        race(
            &store,
            &query,
            |racer| {
                (
                    stream(&format!("typed-{round}-{racer}")),
                    claimed(&event_type, racer, &[]),
                )
            },
            "shared type",
            round,
        )
        .await;
    }
}

/// A decision that reads the same boundary twice (two reads, and a query naming an item twice) appends without a
/// spurious conflict (Marten #5280).
pub async fn one_boundary_read_twice_is_no_conflict<S: EventStore>(store: S, rounds: usize) {
    for round in 0..rounds {
        let t = tag("twice", round);
        let item = QueryItem::types(["Noted"]).and_tags([t.clone()]);
        let query = Query::new().item(item.clone()).item(item);
        store
            .append(
                &stream(&format!("twice-{round}")),
                ExpectedVersion::Any,
                vec![claimed("Noted", 0, std::slice::from_ref(&t))],
            )
            .await
            .expect("the first note");
        let first = visible(&store, &query, 1).await;
        let second = store.read_query(&query, None).await.expect("read again");
        assert_eq!(second.events.len(), 1);
        store
            .append_multi(
                MultiAppend::new()
                    .append(
                        stream(&format!("twice-{round}")),
                        ExpectedVersion::Any,
                        vec![claimed("Noted", 1, std::slice::from_ref(&t))],
                    )
                    .condition(AppendCondition::new(query.clone(), first.after)),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: the boundary read twice conflicted: {e}"));
    }
}

/// Multi-stream appends on two streams race single appends on each, all expecting the same versions: a stream is
/// never written twice and a multi-stream append never in part.
pub async fn multi_stream_appends_race_single_appends<S: EventStore + Clone + 'static>(
    store: S,
    rounds: usize,
) {
    for round in 0..rounds {
        let (a, b) = (
            stream(&format!("ma-{round}")),
            stream(&format!("mb-{round}")),
        );
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let (store, a, b) = (store.clone(), a.clone(), b.clone());
                tokio::spawn(async move {
                    let event = || claimed("Moved", racer, &[]);
                    let outcome = match racer % 4 {
                        0 | 1 => store
                            .append_multi(
                                MultiAppend::new()
                                    .append(a, ExpectedVersion::NoStream, vec![event()])
                                    .append(b, ExpectedVersion::NoStream, vec![event()]),
                            )
                            .await
                            .map(|_| ()),
                        2 => store
                            .append(&a, ExpectedVersion::NoStream, vec![event()])
                            .await
                            .map(|_| ()),
                        _ => store
                            .append(&b, ExpectedVersion::NoStream, vec![event()])
                            .await
                            .map(|_| ()),
                    };
                    (racer, outcome)
                })
            })
            .collect();
        let mut multi_winner = None;
        for task in tasks {
            match task.await.expect("racer") {
                (racer, Ok(())) if racer % 4 < 2 => multi_winner = Some(racer),
                (_, Ok(()) | Err(StoreError::Conflict { .. } | StoreError::Conflicts { .. })) => {}
                (_, Err(other)) => panic!("round {round}: a racer failed with {other}"),
            }
        }
        let read = |s: StreamId| {
            let store = &store;
            async move {
                store
                    .read_stream(&s, crate::store::StreamRead::forward())
                    .await
                    .expect("read")
            }
        };
        let (ea, eb) = (read(a).await, read(b).await);
        assert_eq!(
            (ea.len(), eb.len()),
            (1, 1),
            "round {round}: each stream written once"
        );
        let racer = |e: &crate::store::RecordedEvent| e.payload["racer"].as_u64();
        match multi_winner {
            Some(winner) => assert_eq!(
                (racer(&ea[0]), racer(&eb[0])),
                (Some(winner as u64), Some(winner as u64)),
                "round {round}: the multi-stream winner owns both streams"
            ),
            None => assert!(
                racer(&ea[0]).is_some_and(|r| r % 4 == 2)
                    && racer(&eb[0]).is_some_and(|r| r % 4 == 3),
                "round {round}: a multi-stream append was written in part"
            ),
        }
    }
}
