//! Who may do what: the Host check against DNS rebinding, and the token that actions need.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::Shared;

/// Bound to a loopback address, answers only requests whose `Host` is a loopback name with our port: a page on
/// another site cannot reach it through a DNS name rebound to 127.0.0.1.
pub(crate) async fn loopback_host(
    State(address): State<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if address.ip().is_loopback() {
        let port = address.port();
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let allowed = [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ];
        if !allowed.iter().any(|a| a == host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "this server answers only on localhost\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Whether the request may act: `Err` with the response to send when it may not.
#[allow(clippy::result_large_err)]
pub(crate) fn may_act<S>(shared: &Arc<Shared<S>>, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = &shared.token else {
        return Err((
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "actions are disabled: start es serve with --token (or ES_ADMIN_TOKEN)"
            })),
        )
            .into_response());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    match same(given.as_bytes(), token.as_bytes()) {
        true => Ok(()),
        false => Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "a valid token is needed for actions" })),
        )
            .into_response()),
    }
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
