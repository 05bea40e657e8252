//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::routes::commands::json_response;
use crate::state::AppState;

/// The process is up.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let body = json!({"status": "ok", "instance": &*state.instance_id});
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// The instance can serve: its database answers. A balancer sends traffic
/// only to ready instances.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.trading.reader().ping().await {
        Ok(()) => {
            let body = json!({"status": "ready", "instance": &*state.instance_id, "checks": {"database": "ok"}});
            json_response(StatusCode::OK, body.to_string().into_bytes())
        }
        Err(error) => {
            let body = json!({
                "status": "not_ready",
                "instance": &*state.instance_id,
                "checks": {"database": error.to_string()},
            });
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                body.to_string().into_bytes(),
            )
        }
    }
}

/// Prometheus metrics in the text exposition format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}
