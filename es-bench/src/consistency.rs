//! Invariants across aggregates on any store: conditional (DCB) appends against unconditional ones, and
//! multi-stream appends against the single appends they replace, in the same run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use es_core::store::{AppendCondition, MultiAppend, Query, QueryItem};
use es_core::{EventStore, ExpectedVersion, NewEvent, Position, StoreError, StreamId};

use crate::report::Figure;
use crate::stats::rate;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Writers in the concurrent figures.
const WRITERS: usize = 8;

fn event(tags: &[String]) -> NewEvent {
    NewEvent::new("Claimed", 1, serde_json::json!({ "amount": 1 })).with_tags(tags.iter().cloned())
}

fn stream(prefix: &str, n: usize) -> Result<StreamId, Error> {
    Ok(StreamId::new(format!("{prefix}-{n}"))?)
}

/// One unconditional append of one untagged event to a stream of its own (`prefix`-`n`).
async fn plain<S: EventStore>(store: &S, prefix: &str, n: usize) -> Result<(), Error> {
    store
        .append(&stream(prefix, n)?, ExpectedVersion::Any, vec![event(&[])])
        .await?;
    Ok(())
}

/// How `n` appends are spread over `writers` tasks: each its share, in order.
async fn spread<S, F, Fut>(store: &S, n: usize, writers: usize, op: F) -> Result<f64, Error>
where
    S: EventStore + Clone + 'static,
    F: Fn(S, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, op) = (store.clone(), Arc::clone(&op));
            tokio::spawn(async move {
                for i in 0..n / writers {
                    op(store.clone(), writer, i).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    // Every task finishes before an error is returned: none is left writing.
    let mut failed = None;
    for task in tasks {
        if let Err(error) = task.await.map_err(Error::from).and_then(|done| done) {
            failed.get_or_insert(error);
        }
    }
    match failed {
        Some(error) => Err(error),
        None => Ok(rate(n / writers * writers, started.elapsed())),
    }
}

/// The figures on `store`, named with `label` (the store), `n` appends each.
pub(crate) async fn figures<S: EventStore + Clone + 'static>(
    store: &S,
    label: &str,
    n: usize,
) -> Result<Vec<Figure>, Error> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut figures = Vec::new();
    for writers in [1, WRITERS] {
        // Names of this pass's own: the passes must not share a boundary.
        let run = format!("{run}n{writers}");
        let r = run.clone();
        let plain = spread(store, n, writers, move |store: S, w, i| {
            let r = r.clone();
            async move { plain(&store, &format!("plain{r}w{w}"), i).await }
        })
        .await?;
        // Disjoint boundaries: each append conditioned on a tag of its own (a username, say).
        let r = run.clone();
        let disjoint = spread(store, n, writers, move |store: S, w, i| {
            let r = r.clone();
            async move {
                let tag = format!("name:{r}-{w}-{i}");
                let append = MultiAppend::new()
                    .append(
                        stream(&format!("cond{r}w{w}"), i)?,
                        ExpectedVersion::Any,
                        vec![event(std::slice::from_ref(&tag))],
                    )
                    .condition(AppendCondition::new(
                        Query::new().item(QueryItem::tags([tag])),
                        None,
                    ));
                store.append_multi(append).await?;
                Ok(())
            }
        })
        .await?;
        let who = if writers == 1 {
            "1 writer".to_owned()
        } else {
            format!("{writers} writers")
        };
        figures.push(
            Figure::new(
                format!("{label}: conditional append, {who}, disjoint boundaries"),
                disjoint,
                "appends/s",
            )
            .against(format!("unconditional append, {who}"), plain)
            .note("each append tagged and conditioned on its own tag: nothing before it may match"),
        );
        if writers > 1 {
            let conflicts = Arc::new(AtomicU64::new(0));
            // Each writer remembers where its last read stood, as a decision that keeps its state would.
            let seen: Arc<Vec<Mutex<Option<Position>>>> =
                Arc::new((0..writers).map(|_| Mutex::new(None)).collect());
            let (r, counted) = (run.clone(), Arc::clone(&conflicts));
            let overlapping = spread(store, n, writers, move |store: S, w, i| {
                let (r, counted, seen) = (r.clone(), Arc::clone(&counted), Arc::clone(&seen));
                async move { overlapping(&store, &r, w, i, &counted, &seen[w]).await }
            })
            .await?;
            figures.push(
                Figure::new(
                    format!("{label}: conditional append, {who}, one shared boundary"),
                    overlapping,
                    "appends/s",
                )
                .against(format!("unconditional append, {who}"), plain)
                .note(format!(
                    "each writer reads the boundary since its last append, appends on it, again when another writer won: {} lost races",
                    conflicts.load(Ordering::Relaxed)
                )),
            );
        }
    }
    let r = run.clone();
    let singles = spread(store, n, 1, move |store: S, _, i| {
        let r = r.clone();
        async move {
            plain(&store, &format!("from{r}"), i).await?;
            plain(&store, &format!("to{r}"), i).await
        }
    })
    .await?;
    let r = run.clone();
    let multi = spread(store, n, 1, move |store: S, _, i| {
        let r = r.clone();
        async move {
            let append = MultiAppend::new()
                .append(
                    stream(&format!("mfrom{r}"), i)?,
                    ExpectedVersion::NoStream,
                    vec![event(&[])],
                )
                .append(
                    stream(&format!("mto{r}"), i)?,
                    ExpectedVersion::NoStream,
                    vec![event(&[])],
                );
            store.append_multi(append).await?;
            Ok(())
        }
    })
    .await?;
    figures.push(
        Figure::new(
            format!("{label}: multi-stream append of 2 streams"),
            multi,
            "transfers/s",
        )
        .against("two single appends, one after the other", singles)
        .note("1 writer; atomic, with both expected versions checked"),
    );
    Ok(figures)
}

/// One append on the boundary every writer shares: read what is new since this writer's last read, append on the
/// condition that nothing else arrived, again when a race was lost.
async fn overlapping<S: EventStore>(
    store: &S,
    run: &str,
    writer: usize,
    i: usize,
    conflicts: &AtomicU64,
    seen: &Mutex<Option<Position>>,
) -> Result<(), Error> {
    let tag = format!("pool:{run}");
    let query = Query::new().item(QueryItem::tags([tag.clone()]));
    let mut after: Option<Position> = *seen.lock().map_err(|_| "poisoned")?;
    loop {
        let read = store.read_query(&query, after).await?;
        after = read.after.or(after);
        let append = MultiAppend::new()
            .append(
                stream(&format!("pool{run}w{writer}"), i)?,
                ExpectedVersion::Any,
                vec![event(std::slice::from_ref(&tag))],
            )
            .condition(AppendCondition::new(query.clone(), after));
        match store.append_multi(append).await {
            Ok(done) => {
                *seen.lock().map_err(|_| "poisoned")? = done.last().map(|d| d.last_position);
                return Ok(());
            }
            Err(StoreError::ConditionFailed { .. }) => {
                conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err(other) => return Err(other.into()),
        }
    }
}
