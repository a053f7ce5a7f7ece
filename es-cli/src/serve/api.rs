//! The routes: the page, `/metrics`, and the JSON API.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /` | the admin page |
//! | `GET /metrics` | Prometheus text: every projection's lag, checkpoint, state and dead letters |
//! | `GET /api/config` | `{ "actions": bool, "payloads": bool }` |
//! | `GET /api/projections`, `/api/projections/{name}` | status, as `es projections status --json` |
//! | `GET /api/lag` | lag samples of the last 10 minutes per projection |
//! | `GET /api/dead-letters[?projection=]`, `/api/dead-letters/{projection}/{event}` | dead letters |
//! | `GET /api/processes[?process=&limit=]` | process manager instances |
//! | `GET /api/streams[?category=&after=&limit=]`, `/api/streams/{id}[?from=&limit=]` | streams, a stream's events |
//! | `GET /api/event?position=C/P` | the event at a position |
//! | `POST /api/projections/{name}/{pause,resume,rebuild}`, `.../reset?to=C/P` | control (token) |
//! | `POST /api/dead-letters/{projection}/{event}/{redrive,discard}` | control (token) |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use es_core::control::{ControlAnswer, ControlCommand};
use es_core::store::StreamRead;
use es_core::{EventId, Position, StreamId, Version};
use serde::Deserialize;

use crate::serve::Shared;
use crate::serve::guard::{loopback_host, may_act};
use crate::views::{DeadLetterView, EventView};
use es_core::control::OperatorStore;

/// How long an action waits for the projection's instance to answer.
const ANSWER: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("page.html");

type Ctx<S> = State<Arc<Shared<S>>>;

pub(crate) fn router<S: OperatorStore>(shared: Arc<Shared<S>>, address: SocketAddr) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/metrics", get(metrics::<S>))
        .route("/api/config", get(config::<S>))
        .route("/api/projections", get(projections::<S>))
        .route("/api/projections/{name}", get(projection::<S>))
        .route("/api/projections/{name}/{action}", post(control::<S>))
        .route("/api/lag", get(lag::<S>))
        .route("/api/dead-letters", get(dead_letters::<S>))
        .route(
            "/api/dead-letters/{projection}/{event}",
            get(dead_letter::<S>),
        )
        .route(
            "/api/dead-letters/{projection}/{event}/{action}",
            post(letter_action::<S>),
        )
        .route("/api/processes", get(processes::<S>))
        .route("/api/streams", get(streams::<S>))
        .route("/api/streams/{id}", get(stream::<S>))
        .route("/api/event", get(event::<S>))
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(address, loopback_host))
}

/// A failed request: its status and a JSON `{ "error": ... }`.
struct Failed(StatusCode, String);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<es_core::StoreError> for Failed {
    fn from(error: es_core::StoreError) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

fn not_found(what: String) -> Failed {
    Failed(StatusCode::NOT_FOUND, what)
}

fn bad_request(what: String) -> Failed {
    Failed(StatusCode::BAD_REQUEST, what)
}

type Answer = Result<Response, Failed>;

async fn metrics<S: OperatorStore>(State(shared): Ctx<S>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}

async fn config<S: OperatorStore>(State(shared): Ctx<S>) -> impl IntoResponse {
    Json(serde_json::json!({ "actions": shared.token.is_some(), "payloads": shared.payloads }))
}

async fn projections<S: OperatorStore>(State(shared): Ctx<S>) -> Answer {
    Ok(Json(shared.app.operator.projections().await?).into_response())
}

async fn projection<S: OperatorStore>(State(shared): Ctx<S>, Path(name): Path<String>) -> Answer {
    match shared.app.operator.projection(&name).await? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(not_found(format!(
            "no runner reports a projection named `{name}`"
        ))),
    }
}

async fn lag<S: OperatorStore>(State(shared): Ctx<S>) -> impl IntoResponse {
    Json(shared.history.snapshot())
}

#[derive(Deserialize)]
struct ResetTo {
    to: Option<String>,
}

async fn control<S: OperatorStore>(
    State(shared): Ctx<S>,
    Path((name, action)): Path<(String, String)>,
    Query(reset): Query<ResetTo>,
    headers: HeaderMap,
) -> Answer {
    if let Err(refused) = may_act(&shared, &headers) {
        return Ok(refused);
    }
    let command = match action.as_str() {
        "pause" => ControlCommand::Pause,
        "resume" => ControlCommand::Resume,
        "rebuild" => ControlCommand::Rebuild,
        "reset" => {
            let to = reset
                .to
                .ok_or_else(|| bad_request("reset needs ?to=COMMIT/PREPARE".into()))?;
            let position = to
                .parse::<Position>()
                .map_err(|e| bad_request(format!("`{to}`: {e}")))?;
            ControlCommand::ResetTo { position }
        }
        other => return Err(not_found(format!("no action `{other}`"))),
    };
    send(&shared, &name, command).await
}

async fn letter_action<S: OperatorStore>(
    State(shared): Ctx<S>,
    Path((projection, event, action)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Answer {
    if let Err(refused) = may_act(&shared, &headers) {
        return Ok(refused);
    }
    let event_id = event_id(&event)?;
    let command = match action.as_str() {
        "redrive" => ControlCommand::Redrive {
            event_id: Some(event_id),
        },
        "discard" => ControlCommand::Discard { event_id },
        other => return Err(not_found(format!("no action `{other}`"))),
    };
    send(&shared, &projection, command).await
}

/// Sends a control request; the answer with 200 (done), 409 (rejected) or 504 (timed out).
async fn send<S: OperatorStore>(
    shared: &Shared<S>,
    projection: &str,
    command: ControlCommand,
) -> Answer {
    let answer = shared
        .app
        .operator
        .send(projection, command, ANSWER)
        .await?;
    let status = match answer {
        ControlAnswer::Done { .. } => StatusCode::OK,
        ControlAnswer::Rejected { .. } => StatusCode::CONFLICT,
        _ => StatusCode::GATEWAY_TIMEOUT,
    };
    Ok((status, Json(answer)).into_response())
}

fn event_id(text: &str) -> Result<EventId, Failed> {
    text.parse()
        .map_err(|e| bad_request(format!("`{text}` is not an event id: {e}")))
}

#[derive(Deserialize)]
struct OfProjection {
    projection: Option<String>,
}

async fn dead_letters<S: OperatorStore>(
    State(shared): Ctx<S>,
    Query(query): Query<OfProjection>,
) -> Answer {
    let letters: Vec<DeadLetterView> = shared
        .app
        .operator
        .dead_letters_of(query.projection.as_deref())
        .await?
        .into_iter()
        .map(|l| DeadLetterView::of(l, None))
        .collect();
    Ok(Json(letters).into_response())
}

async fn dead_letter<S: OperatorStore>(
    State(shared): Ctx<S>,
    Path((projection, event)): Path<(String, String)>,
) -> Answer {
    let id = event_id(&event)?;
    let letter = crate::views::dead_letter(&shared.app, &projection, id, shared.payloads)
        .await?
        .ok_or_else(|| {
            not_found(format!(
                "projection `{projection}` has no dead letter for event {id}"
            ))
        })?;
    Ok(Json(letter).into_response())
}

#[derive(Deserialize)]
struct ProcessQuery {
    process: Option<String>,
    limit: Option<usize>,
}

async fn processes<S: OperatorStore>(
    State(shared): Ctx<S>,
    Query(query): Query<ProcessQuery>,
) -> Answer {
    let limit = query.limit.unwrap_or(100).min(1_000);
    let instances = shared
        .app
        .operator
        .processes(query.process.as_deref(), limit)
        .await?;
    Ok(Json(instances).into_response())
}

#[derive(Deserialize)]
struct StreamsQuery {
    category: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

async fn streams<S: OperatorStore>(
    State(shared): Ctx<S>,
    Query(query): Query<StreamsQuery>,
) -> Answer {
    let category = query.category.filter(|c| !c.is_empty());
    let limit = query.limit.unwrap_or(50).min(1_000);
    let streams = shared
        .app
        .store
        .streams(category.as_deref(), query.after.as_deref(), limit)
        .await?;
    Ok(Json(streams).into_response())
}

#[derive(Deserialize)]
struct StreamQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

async fn stream<S: OperatorStore>(
    State(shared): Ctx<S>,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
) -> Answer {
    let stream = StreamId::new(&id).map_err(|e| bad_request(e.to_string()))?;
    let read = StreamRead::forward()
        .from(Version::new(query.from.unwrap_or(1).max(1)))
        .limit(query.limit.unwrap_or(100).min(1_000));
    let events = shared.app.store.read_stream(&stream, read).await?;
    let views: Vec<EventView> = events
        .iter()
        .map(|e| EventView::of(e, shared.payloads))
        .collect();
    Ok(Json(views).into_response())
}

#[derive(Deserialize)]
struct AtPosition {
    position: String,
}

async fn event<S: OperatorStore>(State(shared): Ctx<S>, Query(query): Query<AtPosition>) -> Answer {
    let position = query
        .position
        .parse::<Position>()
        .map_err(|e| bad_request(format!("`{}`: {e}", query.position)))?;
    let event = shared
        .app
        .operator
        .event_at(position)
        .await?
        .ok_or_else(|| not_found(format!("no event at position {position}")))?;
    Ok(Json(EventView::of(&event, shared.payloads)).into_response())
}
