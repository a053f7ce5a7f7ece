//! One trace from a command through its events: the command's span is stored in the events' metadata as a W3C
//! `traceparent`; the projection batch that handles them links to it, the process manager's step continues it, and
//! the command the step sends (and that command's events) stay in the same trace. Spans are collected with
//! OpenTelemetry's in-memory exporter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use es_core::process::{
    CommandContext, CommandRouter, Input, Outcome, ProcessManager, ProcessRunner, Reaction,
    RouteError,
};
use es_core::projection::{HandlerError, ProjectionOptions};
use es_core::{
    Aggregate, DomainEvent, EventStore, Metadata, Projection, ProjectionRunner, RecordedEvent,
    Repository, StreamId, StreamRead,
};
use es_memory::InMemoryEventStore;
use examples::bank::{Account, AccountCommand, AccountEvent};
use opentelemetry::trace::{TraceId, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Counts nothing: its batches are what the test looks at.
struct Opened;

#[async_trait::async_trait]
impl Projection for Opened {
    type Event = AccountEvent;
    fn name(&self) -> &str {
        "opened"
    }
    async fn handle(&self, _: AccountEvent, _: &RecordedEvent) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[derive(Default, Clone)]
struct Mailbox(u32);

#[derive(DomainEvent)]
#[event(aggregate = Mailbox)]
enum MailboxEvent {
    Greeted,
}

impl Aggregate for Mailbox {
    const CATEGORY: &'static str = "mailbox";
    type Event = MailboxEvent;
    type Command = ();
    type Error = std::convert::Infallible;
    fn handle(&self, _: &()) -> Result<Vec<MailboxEvent>, Self::Error> {
        Ok(vec![MailboxEvent::Greeted])
    }
    fn apply(self, _: &MailboxEvent) -> Self {
        Mailbox(self.0 + 1)
    }
}

/// Greets the owner of every account opened.
struct Greeter;

impl ProcessManager for Greeter {
    type Event = AccountEvent;
    type State = bool;
    type Command = String;
    fn name(&self) -> &str {
        "greeter"
    }
    fn correlate(&self, event: &AccountEvent, _: &RecordedEvent) -> Option<String> {
        match event {
            AccountEvent::Opened { owner } => Some(owner.clone()),
            _ => None,
        }
    }
    fn apply(&self, _: bool, _: &Input<AccountEvent>) -> bool {
        true
    }
    fn react(&self, _: &bool, input: &Input<AccountEvent>) -> Reaction<String> {
        match input {
            Input::Event {
                event: AccountEvent::Opened { owner },
                ..
            } => Reaction::none().send(owner.clone()),
            _ => Reaction::none(),
        }
    }
}

struct Mailboxes(Repository<Mailbox, InMemoryEventStore>);

#[async_trait::async_trait]
impl CommandRouter for Mailboxes {
    type Command = String;
    async fn route(&self, owner: &String, context: &CommandContext) -> Result<Outcome, RouteError> {
        context.execute(&self.0, owner, &()).await
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_a_command_through_its_events_to_the_projection_and_the_process_manager()
 {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("es-tests")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let store = InMemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let mailboxes = Repository::<Mailbox, _>::new(store.clone());
    let running = ProjectionRunner::new(store.clone())
        .with_projection(Opened, store.clone(), ProjectionOptions::default())
        .start();
    let process_manager = ProcessRunner::new(Greeter, Mailboxes(mailboxes.clone()), store.clone())
        .start(store.clone(), store.clone());

    // The request: one command, under a span of the caller's.
    let request = tracing::info_span!("POST /accounts/1");
    let executed = accounts
        .execute(
            "1",
            &AccountCommand::Open {
                owner: "ann".into(),
            },
            Metadata::new(),
        )
        .instrument(request.clone())
        .await
        .unwrap();
    drop(request);
    let at = executed.append.unwrap().last_position;
    running
        .wait_for("opened", at, Duration::from_secs(10))
        .await
        .unwrap();
    process_manager
        .wait_for(at, Duration::from_secs(10))
        .await
        .unwrap();
    running.shutdown().await;
    process_manager.shutdown().await;
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let request = named(&spans, "POST /accounts/1");
    assert_eq!(
        request.len(),
        1,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let trace: TraceId = request[0].span_context.trace_id();

    // The command's span is a child of the request, and its id is what the event carries.
    let execute = named(&spans, "execute")
        .into_iter()
        .find(|s| s.parent_span_id == request[0].span_context.span_id())
        .expect("an execute span under the request");
    assert_eq!(execute.span_context.trace_id(), trace);
    let stored = store
        .read_stream(&StreamId::new("account-1").unwrap(), StreamRead::forward())
        .await
        .unwrap();
    let traceparent = stored[0]
        .metadata
        .traceparent()
        .expect("the event carries the trace");
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", trace, execute.span_context.span_id())
    );

    // The projection batch that handled the event links to the command's span.
    let linked = named(&spans, "projection_batch").into_iter().any(|batch| {
        batch.links.links.iter().any(|link| {
            link.span_context.trace_id() == trace
                && link.span_context.span_id() == execute.span_context.span_id()
        })
    });
    assert!(linked, "no projection batch links to the command's span");

    // The process manager's step continues the trace, and so does the command it sent, whose events carry it on.
    let step = named(&spans, "process_step")
        .into_iter()
        .find(|s| s.span_context.trace_id() == trace)
        .expect("a process manager step in the command's trace");
    assert_eq!(step.parent_span_id, execute.span_context.span_id());
    let sent = named(&spans, "execute")
        .into_iter()
        .find(|s| s.parent_span_id == step.span_context.span_id())
        .expect("the process manager's command under its step");
    assert_eq!(sent.span_context.trace_id(), trace);
    let greeted = store
        .read_stream(
            &StreamId::new("mailbox-ann").unwrap(),
            StreamRead::forward(),
        )
        .await
        .unwrap();
    assert!(
        greeted[0]
            .metadata
            .traceparent()
            .is_some_and(|t| t.contains(&trace.to_string())),
        "the process manager's events carry the command's trace"
    );
}
