//! `GET /api/v1/users/{user}`: a trader's summary, as a read (the audited
//! DISPLAY_SUMMARY command goes through `POST /api/v1/commands`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use engine::{RejectCode, Rejection, UserId};
use store::Reads;

use crate::api::shapes::SummaryView;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::json_response;
use crate::service::{SUMMARY_HISTORY, money};
use crate::state::AppState;

pub async fn summary(
    State(state): State<AppState>,
    principal: Principal,
    user: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let user = permitted_user(&principal, user)?;
    let reader = state.trading.reader();
    let now_ms = (state.clock)();
    // One read of the account's version and the price generation (and the
    // newest prices of a kept summary's symbols, if that moved); the
    // summary itself only when what it shows changed (summaries.rs).
    let probe = state.summaries.probe(&user);
    let stamp = reader
        .summary_stamp(&user, probe.symbols.clone(), probe.generation)
        .await?;
    let Some(stamp) = stamp else {
        return Err(unknown_user(&user));
    };
    if let Some(body) = state.summaries.get(&user, &probe, &stamp, now_ms) {
        return Ok(json_response(StatusCode::OK, body));
    }
    let Some(loaded) = reader.account(&user).await? else {
        return Err(unknown_user(&user));
    };
    let summary = loaded.account.summary(now_ms);
    // Read after the account: it holds at least every row of that version.
    let extras = reader
        .summary_extras(&user, money::held_symbols(&summary), SUMMARY_HISTORY)
        .await?;
    let prices = extras.prices;
    let valuation = money::value(&loaded.account, &summary, &prices);
    let view = SummaryView::new(&user, &summary, &valuation, extras.history);
    let body = Bytes::from(serde_json::to_vec(&view).expect("plain data serializes"));
    // The stamp's generation was read before these prices: they are the
    // newest at it or later.
    state.summaries.put(
        &user,
        loaded.version,
        stamp.generation,
        &summary,
        prices,
        body.clone(),
    );
    Ok(json_response(StatusCode::OK, body))
}

fn parse_user(path: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request("malformed_path", e.body_text()))?;
    UserId::parse(&text).map_err(|e| ApiError::bad_request("invalid_user", e.to_string()))
}

/// The user the path names, if `principal` may act for them: the path's
/// error, or 403.
pub fn permitted_user(
    principal: &Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<UserId, ApiError> {
    let user = parse_user(path)?;
    principal.check(&user)?;
    Ok(user)
}

pub fn unknown_user(user: &UserId) -> ApiError {
    ApiError::from(Rejection::new(
        RejectCode::UnknownUser,
        format!("There is no user {user}: a user comes into being with their first ADD."),
    ))
}
