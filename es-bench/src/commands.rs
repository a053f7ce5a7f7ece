//! Appends through the repository (load + decide + append) and batch appends, on any store.

use std::sync::Arc;
use std::time::Instant;

use es_core::{
    Aggregate, DomainEvent, EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StreamId,
};

use crate::projections::Tick;
use crate::stats::rate;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The meter's event: a tick of the same shape as the projections' [`Tick`], in the meter's category.
#[derive(DomainEvent)]
#[event(aggregate = Meter)]
pub(crate) enum MeterEvent {
    /// The n-th tick.
    Ticked {
        /// Its number.
        n: u64,
    },
}

/// A meter that ticks once per command: the smallest aggregate with a real decision.
#[derive(Default, Clone)]
pub(crate) struct Meter {
    ticks: u64,
}

impl Aggregate for Meter {
    const CATEGORY: &'static str = "meter";
    type Event = MeterEvent;
    type Command = ();
    type Error = std::convert::Infallible;

    fn handle(&self, _: &()) -> Result<Vec<MeterEvent>, Self::Error> {
        Ok(vec![MeterEvent::Ticked { n: self.ticks + 1 }])
    }

    fn apply(mut self, _: &MeterEvent) -> Self {
        self.ticks += 1;
        self
    }
}

/// What a run of commands did.
pub(crate) struct Commands {
    /// Commands per second.
    pub(crate) rate: f64,
    /// Appends that lost a race and were decided again.
    pub(crate) retries: u64,
    /// Commands that failed (gave up after losing every race).
    pub(crate) failed: u64,
}

/// `n` commands over `tasks` tasks. With `streams >= tasks` each task has meters of its own, 10 commands each (short
/// streams, as most aggregates are); otherwise all tasks contend on `streams` shared meters, moving to fresh ones
/// every 25 commands per task so that the figure measures contention, not ever longer loads.
pub(crate) async fn execute<S: EventStore + Clone + 'static>(
    store: &S,
    label: &str,
    n: usize,
    tasks: usize,
    streams: usize,
) -> Result<Commands, Error> {
    // Default settings (3 attempts): a command that loses every race counts as failed, not retried forever.
    let repository = Arc::new(Repository::<Meter, _>::new(store.clone()));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let repository = Arc::clone(&repository);
            let label = label.to_owned();
            tokio::spawn(async move {
                let (mut retries, mut failed) = (0, 0);
                for i in 0..n / tasks {
                    let meter = if streams >= tasks {
                        format!("{label}-{task}-{}", i / 10)
                    } else {
                        format!("{label}-shared-{}-{}", i / 25, (task + i) % streams)
                    };
                    match repository.execute(&meter, &(), Metadata::new()).await {
                        Ok(done) => retries += u64::from(done.attempts - 1),
                        Err(es_core::aggregate::RepositoryError::TooManyConflicts {
                            attempts,
                            ..
                        }) => {
                            retries += u64::from(attempts - 1);
                            failed += 1;
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
                Ok::<_, Error>((retries, failed))
            })
        })
        .collect();
    let (mut retries, mut failed) = (0, 0);
    for handle in handles {
        let (r, f) = handle.await??;
        retries += r;
        failed += f;
    }
    Ok(Commands {
        rate: rate(n / tasks * tasks, started.elapsed()),
        retries,
        failed,
    })
}

/// `n` appends of one `event` each (a fresh id each time) to new streams `<label>-<task>-<i>`, over `tasks` tasks.
pub(crate) async fn single_appends<S: EventStore + Clone + 'static>(
    store: &S,
    event: &NewEvent,
    n: usize,
    tasks: usize,
    label: &str,
) -> Result<f64, Error> {
    let (store, event, label) = (store.clone(), event.clone(), label.to_owned());
    crate::stats::spread(n, tasks, move |task, i| {
        let (store, event) = (
            store.clone(),
            event.clone().with_event_id(es_core::EventId::new()),
        );
        let stream = StreamId::new(format!("{label}-{task}-{i}"));
        async move {
            store
                .append(&stream?, ExpectedVersion::NoStream, vec![event])
                .await?;
            Ok(())
        }
    })
    .await
}

/// Events per second appending batches of `batch` events to one stream per call.
pub(crate) async fn batches<S: EventStore>(
    store: &S,
    label: &str,
    calls: usize,
    batch: usize,
) -> Result<f64, Error> {
    // Every batch is built before the clock starts, as the raw baseline's are.
    let mut prepared = Vec::with_capacity(calls);
    for call in 0..calls {
        let events: Vec<NewEvent> = (0..batch as u64)
            .map(|n| NewEvent::from_domain(&Tick::Ticked { n }, Metadata::new()))
            .collect::<Result<_, _>>()?;
        prepared.push((StreamId::new(format!("{label}-{call}"))?, events));
    }
    let started = Instant::now();
    for (stream, events) in prepared {
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await?;
    }
    Ok(rate(calls * batch, started.elapsed()))
}

/// The raw limit of an in-memory append: pushing each event under a mutex, `batch` at a time.
fn vec_pushes(n: usize, batch: usize) -> f64 {
    let log = std::sync::Mutex::new(Vec::with_capacity(n));
    let event = NewEvent::new("Ticked", 1, serde_json::json!({ "n": 1 }));
    let started = Instant::now();
    for _ in 0..n / batch {
        let mut log = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for _ in 0..batch {
            log.push(event.clone());
        }
    }
    std::hint::black_box(&log);
    rate(n / batch * batch, started.elapsed())
}

/// The in-memory command and batch figures.
pub(crate) async fn memory(n: usize) -> Result<Vec<crate::report::Figure>, Error> {
    use crate::report::Figure;
    let store = es_memory::InMemoryEventStore::new();
    let single = vec_pushes(n, 1);
    let seq = execute(&store, "seq", n, 1, 1).await?;
    let par = execute(&store, "par", n, 8, 8).await?;
    let hot = execute(&store, "hot", n, 8, 4).await?;
    let batch = batches(&store, "batch", n / 100, 100).await?;
    Ok(vec![
        Figure::new(
            "memory: execute (load + decide + append), sequential",
            seq.rate,
            "commands/s",
        )
        .against("Vec push under a mutex", single)
        .note("1 event per command, 10 commands per meter"),
        Figure::new(
            "memory: execute, 8 tasks on their own streams",
            par.rate,
            "commands/s",
        )
        .against("Vec push under a mutex", single),
        Figure::new(
            "memory: execute, 8 tasks contending on 4 streams",
            hot.rate,
            "commands/s",
        )
        .against("execute, 8 tasks on their own streams", par.rate)
        .note(format!(
            "{} conflicts decided again, {} commands failed",
            hot.retries, hot.failed
        )),
        Figure::new("memory: append batches of 100 events", batch, "events/s")
            .against("Vec push of 100 under a mutex", vec_pushes(n, 100)),
    ])
}
