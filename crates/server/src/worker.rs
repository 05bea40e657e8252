//! `daytrader worker`: the cluster's trigger engine and expiry task.
//! Several may run; one leads at a time, chosen by a PostgreSQL advisory lock held on its own
//! connection. If the leader dies its connection drops, PostgreSQL frees the
//! lock, and a follower takes over at its next try (within a second).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use store::Store;

use crate::app::{Services, StartError, services};
use crate::service::{Trading, spawn_expiry_task, spawn_trigger_engine};
use crate::settings::Settings;
use crate::shutdown::{self, Shutdown};

/// The advisory lock's name; every worker of a deployment uses it.
pub const LEADER_LOCK: &str = "daytrader-trigger-engine";
/// How often a follower tries to lead, and a leader checks it still does.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Whether this worker leads, for its health endpoint.
pub type Leading = Arc<AtomicBool>;

/// `/healthz` (with the worker's role) and `/metrics`, for container health
/// checks and scraping.
pub fn health_router(leading: Leading) -> Router {
    async fn healthz(State(leading): State<Leading>) -> Response {
        let role = if leading.load(Ordering::Relaxed) {
            "leader"
        } else {
            "follower"
        };
        let body = serde_json::json!({"status": "ok", "role": role});
        crate::respond::json_response(StatusCode::OK, body.to_string().into_bytes())
    }
    async fn metrics() -> String {
        crate::telemetry::render(&crate::telemetry::metrics_handle())
    }
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(leading)
}

/// Runs until `shutdown`: leads when it can, follows otherwise.
pub async fn run(
    settings: Settings,
    leading: Leading,
    shutdown: Shutdown,
) -> Result<(), StartError> {
    let Services { trading, clock, .. } = services(&settings)?;
    if !matches!(trading.store(), Store::Postgres(_)) {
        return Err(StartError::WorkerNeedsPostgres);
    }
    metrics::gauge!("trigger_engine_leader").set(0.0);
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            led = lead_once(&trading, &clock, &settings, &leading, &shutdown) => {
                if let Err(error) = led {
                    tracing::warn!(%error, "could not try for the trigger engine's lead; trying again");
                }
            }
        }
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    trading.close().await;
    Ok(())
}

/// Tries to take the lead; if it does, runs the trigger engine and the
/// expiry task until the lease is lost or the process stops.
async fn lead_once(
    trading: &Arc<Trading>,
    clock: &store::Clock,
    settings: &Settings,
    leading: &Leading,
    shutdown: &Shutdown,
) -> Result<(), store::StoreError> {
    let Store::Postgres(postgres) = trading.store() else {
        unreachable!("checked at start");
    };
    let Some(mut lease) = postgres.try_lead(LEADER_LOCK).await? else {
        return Ok(());
    };
    tracing::info!("leading the trigger engine");
    leading.store(true, Ordering::Relaxed);
    metrics::gauge!("trigger_engine_leader").set(1.0);
    let (stop, engine_shutdown) = shutdown::channel();
    let engine = spawn_trigger_engine(
        trading.clone(),
        Some(settings.trigger_refresh),
        engine_shutdown.clone(),
    );
    let expiry = spawn_expiry_task(trading.clone(), clock.clone(), engine_shutdown);
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(HEARTBEAT) => {
                if !lease.still_held().await {
                    tracing::warn!("lost the trigger engine's lead (its database connection dropped)");
                    break;
                }
            }
        }
    }
    stop.fire();
    let _ = engine.await;
    let _ = expiry.await;
    leading.store(false, Ordering::Relaxed);
    metrics::gauge!("trigger_engine_leader").set(0.0);
    lease.release().await;
    Ok(())
}
