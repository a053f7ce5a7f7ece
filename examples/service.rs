//! The bank as an HTTP service (axum), on the in-memory store or on PostgreSQL:
//! ```text
//! cargo run --example service                      # memory, http://127.0.0.1:3000
//! cargo run --example service -- --listen 127.0.0.1:8080 --database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//! ```
//! Logs go to stderr with the trace id of each request; `/metrics` serves Prometheus text. The routes are in
//! `examples/src/service.rs`; the guide's operating chapter (`es-core/docs/operating.md`) shows a curl session.

use std::sync::Arc;

use es_core::EventStore;
use es_memory::InMemoryEventStore;
use examples::bank::connect_postgres;
use examples::service::{Service, router};
use opentelemetry::trace::TracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: service [--listen ADDR] [--database-url URL]";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (mut listen, mut database_url) = ("127.0.0.1:3000".to_owned(), None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or(USAGE)?,
            "--database-url" => database_url = Some(args.next().ok_or(USAGE)?),
            _ => return Err(USAGE.into()),
        }
    }
    // Traces: spans carry OpenTelemetry ids (a real deployment adds an exporter to the provider); logs show them.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bank-service")))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    es_core::telemetry::describe_metrics();

    let store: Arc<dyn EventStore> = match database_url {
        None => Arc::new(InMemoryEventStore::new()),
        Some(url) => Arc::new(connect_postgres(&url).await?.0),
    };
    let service = Service::start(store, Some(metrics));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    // The read model lives in memory: on Ctrl-C nothing needs saving.
    axum::serve(listener, router(service))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
