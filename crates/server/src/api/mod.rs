//! The JSON API under `/api/v1`, plus health and metrics: one of the two
//! doors onto the trading service (the web pages are the other). Handlers
//! parse and authorize a request, call the service, and render what it
//! answers; one module per resource.

pub mod commands;
pub mod events;
pub mod health;
pub mod history_csv;
pub mod log;
pub mod notifications;
pub mod openapi;
pub mod quotes;
pub mod shapes;
pub mod summaries;
pub mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Every API route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/commands", post(commands::run_command))
        .route("/api/v1/users/{user}", get(users::summary))
        .route("/api/v1/users/{user}/events", get(events::stream))
        .route(
            "/api/v1/users/{user}/notifications",
            get(notifications::list),
        )
        .route(
            "/api/v1/users/{user}/notifications/read",
            post(notifications::mark_read),
        )
        .route("/api/v1/users/{user}/history.csv", get(history_csv::export))
        .route("/api/v1/quotes/{symbol}", get(quotes::quote))
        .route("/api/v1/quotes/{symbol}/history", get(quotes::history))
        .route("/api/v1/log", get(log::dump))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}
