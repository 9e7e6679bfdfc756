//! Placeholder for the Kubernetes WebSocket port-forward protocol (written by another helper;
//! the lead merges the real implementation over this file). Answers 501 until then.
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Serves `kubectl port-forward` / kube-rs `Api::portforward` for `ports`, each forwarded to
/// `targets[port]`.
pub fn serve(ws: WebSocketUpgrade, ports: Vec<u16>, targets: BTreeMap<u16, SocketAddr>) -> Response {
    let _ = (ws, ports, targets);
    StatusCode::NOT_IMPLEMENTED.into_response()
}
