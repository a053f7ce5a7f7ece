//! `es serve`: the admin page and the JSON API it (and any script) reads.
//!
//! Secure by default: it listens on 127.0.0.1 and, bound to a loopback address, answers only requests addressed
//! to it by a loopback name (no DNS rebinding); actions need the `--token` (as `Authorization: Bearer`), and
//! without one the page is read-only; payloads of events and dead letters are hidden unless `--show-payloads`;
//! the database URL and the token are never rendered.

mod api;
mod guard;
mod history;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::app::App;
use crate::cli::ServeArgs;
use crate::failure::Failure;
use es_core::control::OperatorStore;

/// What every request handler shares.
pub(crate) struct Shared<S> {
    pub(crate) app: App<S>,
    pub(crate) token: Option<String>,
    pub(crate) payloads: bool,
    pub(crate) history: history::History,
    pub(crate) metrics: metrics_exporter_prometheus::PrometheusHandle,
}

pub(crate) async fn run<S: OperatorStore>(app: App<S>, args: ServeArgs) -> Result<(), Failure> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::Io(format!("cannot set up /metrics: {e}")))?;
    es_core::telemetry::describe_metrics();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Io(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::Io(e.to_string()))?;
    if !address.ip().is_loopback() {
        eprintln!(
            "warning: listening on {address}, reachable from other machines; put it behind your authentication"
        );
    }
    if args.token.is_none() {
        eprintln!("read-only: start with --token (or ES_ADMIN_TOKEN) to allow actions");
    }
    let shared = Arc::new(Shared {
        app,
        token: args.token.filter(|t| !t.is_empty()),
        payloads: args.show_payloads,
        history: history::History::default(),
        metrics,
    });
    tokio::spawn(history::sample(Arc::clone(&shared)));
    let router = api::router(Arc::clone(&shared), address);
    println!("listening on http://{address}");
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_requested())
        .await
        .map_err(|e| Failure::Io(e.to_string()))?;
    eprintln!("stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a service manager or `kill` sends): both end the server gracefully, with exit code 0.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                eprintln!("cannot listen for SIGTERM ({error}); stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
