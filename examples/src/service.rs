//! The bank as an HTTP service: commands answer with the position of their append, reads answer from the read model
//! once it has passed a given position (read-your-writes), and `/metrics` serves the framework's metrics.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /accounts/{id}` | `{"owner": "ann"}` | `201 {"version": 1, "position": "…"}`, `409` if open |
//! | `POST /accounts/{id}/deposits` | `{"amount": 500}` | `201 {"version": 2, "position": "…"}`, `409` when refused |
//! | `GET /accounts/{id}?after=POSITION` | | `200 {"account": "1", "balance": 500}` once the read model passed `POSITION`; `404`, `504` |
//! | `GET /metrics` | | Prometheus text |
//!
//! Every answer carries the request's trace context in a `traceparent` header.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use es_core::aggregate::RepositoryError;
use es_core::projection::{ProjectionOptions, RunnerError, RunningProjections};
use es_core::{EventStore, Metadata, Position, ProjectionRunner, Repository};
use es_memory::InMemoryEventStore;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::bank::{Account, AccountCommand, AccountError};
use crate::read_model::MemoryBalances;

/// How long a read waits for the read model to reach the position it asks for.
const READ_WAIT: Duration = Duration::from_secs(5);

/// The service: the accounts, their balances (an in-memory read model rebuilt from the store at start) and the
/// metrics.
pub struct Service {
    accounts: Repository<Account, Arc<dyn EventStore>>,
    balances: MemoryBalances,
    running: RunningProjections,
    metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Starts the read model on `store` (from the start: its checkpoint lives in memory, as the model does).
    pub fn start(store: Arc<dyn EventStore>, metrics: Option<PrometheusHandle>) -> Arc<Self> {
        let balances = MemoryBalances::default();
        let running = ProjectionRunner::new(Arc::clone(&store))
            .with_projection(
                balances.clone(),
                InMemoryEventStore::new(),
                ProjectionOptions::default(),
            )
            .start();
        Arc::new(Self {
            accounts: Repository::new(store),
            balances,
            running,
            metrics,
        })
    }
}

/// The routes of the service.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/accounts/{id}", post(open).get(balance))
        .route("/accounts/{id}/deposits", post(deposit))
        .route("/metrics", get(metrics))
        .with_state(service)
}

#[derive(Deserialize)]
struct Open {
    owner: String,
}

#[derive(Deserialize)]
struct Deposit {
    amount: u64,
}

#[derive(Deserialize)]
struct After {
    after: Option<String>,
}

async fn open(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    Json(body): Json<Open>,
) -> Response {
    let span = tracing::info_span!("POST /accounts/{id}", account = %id);
    execute(&service, &id, AccountCommand::Open { owner: body.owner })
        .instrument(span)
        .await
}

async fn deposit(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    Json(body): Json<Deposit>,
) -> Response {
    let span =
        tracing::info_span!("POST /accounts/{id}/deposits", account = %id, amount = body.amount);
    execute(
        &service,
        &id,
        AccountCommand::Deposit {
            amount: body.amount,
        },
    )
    .instrument(span)
    .await
}

async fn execute(service: &Service, id: &str, command: AccountCommand) -> Response {
    let traced = traced_headers();
    match service
        .accounts
        .execute(id, &command, Metadata::new())
        .await
    {
        Ok(executed) => {
            let position = executed.append.map(|a| a.last_position.to_string());
            tracing::info!(trace_id = %trace_id(), account = id, version = executed.version.get(), ?position, "executed");
            let body = json!({ "version": executed.version.get(), "position": position });
            (StatusCode::CREATED, traced, Json(body)).into_response()
        }
        Err(RepositoryError::Rejected { source, .. }) => {
            tracing::info!(trace_id = %trace_id(), account = id, error = %source, "rejected");
            let status = match source {
                AccountError::NotOpen => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            (status, traced, Json(json!({ "error": source.to_string() }))).into_response()
        }
        Err(RepositoryError::InvalidId(error)) => (
            StatusCode::BAD_REQUEST,
            traced,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(trace_id = %trace_id(), account = id, %error, "command failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                traced,
                Json(json!({ "error": error.to_string() })),
            )
                .into_response()
        }
    }
}

async fn balance(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    Query(after): Query<After>,
) -> Response {
    let span = tracing::info_span!("GET /accounts/{id}", account = %id);
    async move {
        let traced = traced_headers();
        let error = |status: StatusCode, message: String| {
            (status, traced_headers(), Json(json!({ "error": message }))).into_response()
        };
        if let Some(after) = after.after {
            let position = match after.parse::<Position>() {
                Ok(position) => position,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            };
            match service
                .running
                .wait_for("balances", position, READ_WAIT)
                .await
            {
                Ok(()) => {}
                Err(RunnerError::Timeout { .. }) => {
                    return error(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!("the read model did not reach {position} within {READ_WAIT:?}"),
                    );
                }
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            }
        }
        let stream = match Repository::<Account, Arc<dyn EventStore>>::stream_id(&id) {
            Ok(stream) => stream.to_string(),
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        };
        match service.accounts.load(&id).await {
            Ok(loaded) if loaded.version.get() == 0 => error(
                StatusCode::NOT_FOUND,
                format!("account {id} does not exist"),
            ),
            Ok(_) => {
                let balance = service
                    .balances
                    .snapshot()
                    .balances
                    .get(&stream)
                    .copied()
                    .unwrap_or(0);
                tracing::info!(trace_id = %trace_id(), account = %id, balance, "read");
                (
                    StatusCode::OK,
                    traced,
                    Json(json!({ "account": id, "balance": balance })),
                )
                    .into_response()
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    .instrument(span)
    .await
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    match &service.metrics {
        Some(handle) => (StatusCode::OK, handle.render()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not recorded in this process",
        )
            .into_response(),
    }
}

/// A `traceparent` header naming the current span, when it is traced.
fn traced_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) =
        es_core::telemetry::current_traceparent().and_then(|t| HeaderValue::from_str(&t).ok())
    {
        headers.insert("traceparent", value);
    }
    headers
}

/// The current span's trace id (`-` when it is not traced), for log lines.
fn trace_id() -> String {
    es_core::telemetry::current_traceparent()
        .and_then(|t| t.split('-').nth(1).map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}
