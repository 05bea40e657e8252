//! `GET /api/v1/quotes/{symbol}`: the current price; and
//! `GET /api/v1/quotes/{symbol}/history`: the prices the system fetched.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::Symbol;
use quotes::Origin;
use serde::{Deserialize, Serialize};
use store::{PricePoint, Reads};

use crate::api::shapes::QuoteView;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::json_response;
use crate::state::AppState;

pub async fn quote(
    State(state): State<AppState>,
    principal: Principal,
    symbol: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let symbol = parse_symbol(symbol)?;
    let recorded_as = match &principal {
        Principal::User(user) => Some(user.clone()),
        Principal::Supervisor => None,
    };
    let quote = state
        .trading
        .quote(symbol, &principal.quote_user(), recorded_as)
        .await?;
    let view = QuoteView {
        symbol: quote.symbol,
        price: quote.price,
        fetched_at_ms: quote.fetched_at_ms,
        cached: matches!(quote.origin, Origin::Cached),
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&view).expect("plain data serializes"),
    ))
}

fn parse_symbol(path: Result<Path<String>, PathRejection>) -> Result<Symbol, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request("malformed_path", e.body_text()))?;
    Symbol::parse(&text).map_err(|e| ApiError::bad_request("invalid_symbol", e.to_string()))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    /// Only points recorded after this time (Unix ms).
    since: Option<i64>,
}

#[derive(Serialize)]
struct HistoryView {
    symbol: Symbol,
    /// Oldest first.
    points: Vec<PricePoint>,
}

/// The price history of a symbol (`store::PricePoint`s, the newest 1,000
/// kept): any signed-in caller may read it, as any may read a quote. It
/// costs no quote.
pub async fn history(
    State(state): State<AppState>,
    _principal: Principal,
    symbol: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let symbol = parse_symbol(symbol)?;
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(
            "invalid_since",
            format!(
                "since must be a time in Unix milliseconds, an integer: {}",
                e.body_text()
            ),
        )
    })?;
    let points = state
        .trading
        .reader()
        .price_history(symbol, query.since)
        .await?;
    let view = HistoryView { symbol, points };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&view).expect("plain data serializes"),
    ))
}
