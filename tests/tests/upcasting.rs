//! Old events keep loading after the schema changes: upcaster chains on every read path, in memory and on
//! PostgreSQL, and the pre-deploy schema check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::aggregate::RepositoryError;
use es_core::evolution::{EventCatalog, SchemaCheck, Upcaster};
use es_core::store::{DecodeError, TypedRead};
use es_core::{
    Aggregate, DomainEvent, EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StreamId,
    StreamRead,
};
use es_memory::InMemoryEventStore;
use serde_json::{Value, json};
use tests::{execute_in_schema, pg_store};

/// A ticket as today's code sees it. `Opened` history: v1 `{name}`; v2 renamed it `title` and added `priority`;
/// v3 added `tags`.
#[derive(Debug, Default, PartialEq, Clone)]
struct Ticket {
    title: String,
    priority: u8,
    tags: Vec<String>,
    closed: bool,
}

/// The ticket's schema history, registered once on its event type: every read path below uses it.
const TICKET_UPCASTERS: &[Upcaster] = &[
    Upcaster::new("Opened", 1, v1_to_v2),
    Upcaster::new("Opened", 2, v2_to_v3),
    Upcaster::renaming("Shut", 1, "Closed", 1, |_| json!({})),
];

#[derive(Debug, PartialEq, DomainEvent)]
#[event(aggregate = Ticket, upcasters = TICKET_UPCASTERS)]
enum TicketEvent {
    #[event(version = 3)]
    Opened {
        title: String,
        priority: u8,
        tags: Vec<String>,
    },
    Closed,
}

impl Aggregate for Ticket {
    const CATEGORY: &'static str = "ticket";
    type Event = TicketEvent;
    type Command = ();
    type Error = std::convert::Infallible;
    fn handle(&self, _: &()) -> Result<Vec<TicketEvent>, Self::Error> {
        Ok(vec![TicketEvent::Closed])
    }
    fn apply(mut self, event: &TicketEvent) -> Self {
        match event {
            TicketEvent::Opened {
                title,
                priority,
                tags,
            } => {
                (self.title, self.priority, self.tags) = (title.clone(), *priority, tags.clone());
            }
            TicketEvent::Closed => self.closed = true,
        }
        self
    }
}

fn v1_to_v2(mut payload: Value) -> Value {
    payload["title"] = payload["name"].take();
    payload["priority"] = json!(3);
    payload
}

fn v2_to_v3(mut payload: Value) -> Value {
    payload["tags"] = json!([]);
    payload
}

/// Earlier releases of the ticket's code, reading the same stored events with less of its history.
mod releases {
    use super::*;

    /// Forgot the history altogether, and said (wrongly) that no event was stored before version 3: without `since`
    /// this does not compile.
    #[derive(Debug, PartialEq, DomainEvent)]
    #[event(category = "ticket")]
    pub(crate) enum NoHistory {
        #[event(version = 3, since = 3)]
        Opened {
            title: String,
            priority: u8,
            tags: Vec<String>,
        },
        Closed,
    }

    /// Knows only the step from v2 and says (wrongly) that none was stored before: v1 events have no way up. Without
    /// `since` this does not compile.
    #[derive(Debug, PartialEq, DomainEvent)]
    #[event(category = "ticket", upcasters = &[Upcaster::new("Opened", 2, v2_to_v3)])]
    pub(crate) enum SecondStepOnly {
        #[event(version = 3, since = 2)]
        Opened {
            title: String,
            priority: u8,
            tags: Vec<String>,
        },
        Closed,
    }

    /// A ticket of an earlier release, reading its events (the fold does not matter: the load fails first).
    macro_rules! old_ticket {
        ($name:ident, $event:ident) => {
            #[derive(Debug, Default, Clone)]
            pub(crate) struct $name;

            impl Aggregate for $name {
                const CATEGORY: &'static str = "ticket";
                type Event = $event;
                type Command = ();
                type Error = std::convert::Infallible;
                fn handle(&self, _: &()) -> Result<Vec<$event>, Self::Error> {
                    Ok(vec![])
                }
                fn apply(self, _: &$event) -> Self {
                    self
                }
            }
        };
    }
    old_ticket!(TicketWithoutHistory, NoHistory);
    old_ticket!(TicketWithSecondStep, SecondStepOnly);
}

fn expected_ticket() -> Ticket {
    Ticket {
        title: "Printer on fire".into(),
        priority: 3,
        tags: vec![],
        closed: true,
    }
}

/// Loads a stream of v1 events through the two-step chain, by the repository and by a typed read.
async fn loads_v1_events_into_v3_types<S: EventStore + Clone>(store: S) {
    let tickets = Repository::<Ticket, _>::new(store.clone());
    let loaded = tickets.load("1").await.unwrap();
    assert_eq!(loaded.state, expected_ticket());
    assert_eq!(loaded.version.get(), 2);

    // New events are written at v3 next to the old v1 ones.
    tickets.execute("1", &(), Metadata::new()).await.unwrap();
    let stream = StreamId::new("ticket-1").unwrap();
    let stored = store
        .read_stream(&stream, StreamRead::forward())
        .await
        .unwrap();
    assert_eq!(
        stored[0].schema_version, 1,
        "stored events are never rewritten"
    );
    let typed = store
        .read_stream_as::<TicketEvent>(&stream, StreamRead::forward())
        .await
        .unwrap();
    assert_eq!(
        typed[0].event,
        TicketEvent::Opened {
            title: "Printer on fire".into(),
            priority: 3,
            tags: vec![]
        }
    );
    assert_eq!(typed.len(), 3);

    // Without the chain the same stream is a typed error naming the gap.
    let plain = Repository::<releases::TicketWithoutHistory, _>::new(store.clone());
    let error = plain.load("1").await.unwrap_err();
    assert!(
        matches!(&error, RepositoryError::Decode(e) if matches!(&e.source,
            DecodeError::MissingUpcaster { event_type, stored: 1, current: 3 } if event_type == "Opened")),
        "{error:?}"
    );
    // With only the second step, the gap is at version 1 → 2.
    let half = Repository::<releases::TicketWithSecondStep, _>::new(store);
    let error = half.load("1").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no upcaster leads from it to version 3"),
        "{error}"
    );
}

#[tokio::test]
async fn v1_events_load_into_v3_types_in_memory() {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("ticket-1").unwrap();
    let old = vec![
        NewEvent::new("Opened", 1, json!({ "name": "Printer on fire" })),
        NewEvent::new("Closed", 1, json!({})),
    ];
    store
        .append(&stream, ExpectedVersion::NoStream, old)
        .await
        .unwrap();
    loads_v1_events_into_v3_types(store).await;
}

#[tokio::test]
async fn v1_events_load_into_v3_types_on_postgres() {
    let store = pg_store().await;
    // As an old release wrote them: plain rows with version-1 JSON.
    execute_in_schema(
        &store,
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload) VALUES \
           ('ticket-1', 1, gen_random_uuid(), 'Opened', 1, '{\"name\": \"Printer on fire\"}'), \
           ('ticket-1', 2, gen_random_uuid(), 'Closed', 1, '{}')",
    )
    .await;
    loads_v1_events_into_v3_types(store).await;
}

#[test]
fn a_renamed_event_type_is_upcast_to_its_new_name() {
    es_core::evolution::check::<TicketEvent>().unwrap();
    let event: TicketEvent =
        es_core::evolution::decode_payload("Shut", 1, &json!({ "reason": "done" })).unwrap();
    assert_eq!(event, TicketEvent::Closed);
}

/// The schema check: clean, then with a pair that has no upcaster path and a pair that no longer decodes.
async fn schema_check_finds_what_would_fail<S: EventStore + EventCatalog>(store: S) {
    let good = vec![
        NewEvent::new("Opened", 1, json!({ "name": "a" })),
        NewEvent::new(
            "Opened",
            3,
            json!({ "title": "b", "priority": 1, "tags": [] }),
        ),
    ];
    store
        .append(
            &StreamId::new("ticket-1").unwrap(),
            ExpectedVersion::Any,
            good,
        )
        .await
        .unwrap();
    let check = || SchemaCheck::new().expect::<TicketEvent>();
    let report = check().run(&store).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.pairs, 2);

    // A v3 payload of the wrong shape, a version newer than the code, a type nothing knows.
    let bad = (0..3)
        .map(|i| NewEvent::new("Opened", 3, json!({ "title": i })))
        .collect::<Vec<_>>();
    let broken = store
        .append(
            &StreamId::new("ticket-3").unwrap(),
            ExpectedVersion::Any,
            bad,
        )
        .await
        .unwrap();
    let no_path = vec![
        NewEvent::new("Escalated", 2, json!({ "to": "boss" })),
        NewEvent::new("Closed", 2, json!({})),
    ];
    store
        .append(
            &StreamId::new("ticket-4").unwrap(),
            ExpectedVersion::Any,
            no_path,
        )
        .await
        .unwrap();

    let report = check().run(&store).await.unwrap();
    assert!(!report.is_ok());
    let problem = |t: &str, v: u32| {
        report
            .problems
            .iter()
            .find(|p| p.event_type == t && p.schema_version == v)
    };
    let wrong_shape =
        problem("Opened", 3).expect("the v3 payloads that do not decode are reported");
    assert_eq!(
        (wrong_shape.count, wrong_shape.failed, wrong_shape.sampled),
        (4, 3, 4)
    );
    assert_eq!(wrong_shape.example_position, broken.first_position);
    assert_eq!(wrong_shape.example_stream.as_str(), "ticket-3");
    let newer = problem("Closed", 2).expect("a version newer than the code is reported");
    assert_eq!(newer.count, 1);
    let unknown = problem("Escalated", 2).expect("a type no event enum knows is reported");
    assert!(
        unknown.error.contains("no registered event type knows"),
        "{}",
        unknown.error
    );
    assert_eq!(report.problems.len(), 3, "{report}");
    let ignoring = check().ignore_type("Escalated").run(&store).await.unwrap();
    assert_eq!(ignoring.problems.len(), 2);
    assert!(
        report
            .to_string()
            .contains("Opened v3: 3 of 4 sampled fail"),
        "{report}"
    );

    // A release that knows only the second step: the stored v1 events have no path to v3.
    let report = SchemaCheck::new()
        .expect::<releases::SecondStepOnly>()
        .run(&store)
        .await
        .unwrap();
    let stranded = report
        .problems
        .iter()
        .find(|p| p.event_type == "Opened" && p.schema_version == 1);
    let stranded = stranded.expect("v1 events without a path are reported");
    assert!(
        stranded
            .error
            .contains("no upcaster leads from it to version 3"),
        "{}",
        stranded.error
    );
}

#[tokio::test]
async fn schema_check_in_memory() {
    schema_check_finds_what_would_fail(InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn schema_check_on_postgres() {
    schema_check_finds_what_would_fail(pg_store().await).await;
}
