//! The bank HTTP service (`cargo run --example service`) over real sockets, on memory and on PostgreSQL: a command
//! answers with its append's position, a read after that position sees the write, refusals and bad input get
//! their status codes, `/metrics` shows the commands, and every answer names its trace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, OnceLock};

use es_core::EventStore;
use es_memory::InMemoryEventStore;
use examples::service::{Service, router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The process's Prometheus recorder and OpenTelemetry tracing layer, installed once, as the example's `main`
/// installs them.
fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use opentelemetry::trace::TracerProvider;
            use tracing_subscriber::layer::SubscriberExt;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            let subscriber = tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("service-test")));
            tracing::subscriber::set_global_default(subscriber).unwrap();
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .unwrap()
        })
        .clone()
}

/// One HTTP/1.1 request; the status, the headers (lower-case) and the body.
async fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_lowercase(), body.to_owned())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn the_service_reads_its_writes_and_reports(store: Arc<dyn EventStore>, account: &str) {
    let service = Service::start(store, Some(metrics()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, router(service)).await });

    let path = format!("/accounts/{account}");
    let (status, head, body) = request(port, "POST", &path, Some(r#"{"owner":"ann"}"#)).await;
    assert_eq!(status, 201, "{body}");
    assert!(head.contains("traceparent: 00-"), "{head}");
    assert_eq!(json(&body)["version"], 1);
    let (status, _, body) = request(port, "POST", &path, Some(r#"{"owner":"ann"}"#)).await;
    assert_eq!(status, 409, "{body}");

    for amount in [500, 250] {
        let deposits = format!("{path}/deposits");
        let (status, _, body) = request(
            port,
            "POST",
            &deposits,
            Some(&format!(r#"{{"amount":{amount}}}"#)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let position = json(&body)["position"].as_str().unwrap().to_owned();
        let (status, _, body) =
            request(port, "GET", &format!("{path}?after={position}"), None).await;
        assert_eq!(status, 200, "{body}");
        let expected = if amount == 500 { 500 } else { 750 };
        assert_eq!(json(&body)["balance"], expected, "read after {position}");
    }
    let (status, _, body) = request(
        port,
        "POST",
        &format!("{path}/deposits"),
        Some(r#"{"amount":0}"#),
    )
    .await;
    assert_eq!(
        (status, json(&body)["error"].as_str().unwrap()),
        (409, "the amount must be more than zero")
    );
    let (status, _, _) = request(port, "GET", &format!("{path}?after=nonsense"), None).await;
    assert_eq!(status, 400);
    let (status, _, _) = request(port, "GET", &format!("{path}-missing"), None).await;
    assert_eq!(status, 404);
    let (status, _, body) = request(port, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        body.lines()
            .any(|l| l.starts_with("es_executes_total{category=\"account\",outcome=\"ok\"}")),
        "{body}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_service_on_memory() {
    the_service_reads_its_writes_and_reports(Arc::new(InMemoryEventStore::new()), "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_service_on_postgres() {
    let store = tests::pg_store().await;
    the_service_reads_its_writes_and_reports(Arc::new(store), "2").await;
}
