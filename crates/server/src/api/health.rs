//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::{Reads, Writes};

use crate::respond::json_response;
use crate::state::AppState;

/// The process is up.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let body = json!({"status": "ok", "instance": &*state.instance_id});
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// The instance can serve: its database answers and takes writes. A
/// balancer sends traffic only to ready instances. The shared cache is
/// reported but does not decide: without it an instance is slower, not
/// broken.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.trading.reader().ping().await {
        Ok(()) => writable(state.trading.store()).await,
        Err(error) => Err(error.to_string()),
    };
    let cache = match (&state.cache, state.cache.status()) {
        (cache::Cache::Memory(_), _) => "not configured".to_owned(),
        (_, cache::CacheStatus::Up) => "ok".to_owned(),
        (_, cache::CacheStatus::Down { reason, .. }) => {
            format!("unavailable ({reason}); quotes go straight to the quote service")
        }
    };
    let (status, ready, database) = match database {
        Ok(()) => (StatusCode::OK, "ready", "ok".to_owned()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", error),
    };
    let body = json!({
        "status": ready,
        "instance": &*state.instance_id,
        "checks": {"database": database, "redis": cache},
    });
    json_response(status, body.to_string().into_bytes())
}

/// Whether writes go through. Known from how the last one ended; while it
/// failed (a full disk: every command answers 503), each check writes a
/// probe row, so readiness comes back with the first write that succeeds,
/// even with no traffic to try one.
async fn writable(store: &store::Store) -> Result<(), String> {
    if store.writes_failing().is_none() {
        return Ok(());
    }
    store
        .probe_writes()
        .await
        .map_err(|error| format!("cannot write: {error}"))
}

/// Prometheus metrics in the text exposition format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        crate::telemetry::render(&state.metrics),
    )
        .into_response()
}
