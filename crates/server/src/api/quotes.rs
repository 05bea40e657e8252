//! `GET /api/v1/quotes/{symbol}`: the current price.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::Symbol;
use quotes::Origin;

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
    let Path(text) = symbol.map_err(|e| ApiError::bad_request("malformed_path", e.body_text()))?;
    let symbol =
        Symbol::parse(&text).map_err(|e| ApiError::bad_request("invalid_symbol", e.to_string()))?;
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
