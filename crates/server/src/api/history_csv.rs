//! `GET /api/v1/users/{user}/history.csv`: the user's history as CSV
//! (SPEC 4b), newest first, streamed; the history page downloads the same
//! through the trader's session.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use engine::UserId;
use store::Reads;

use crate::api::users::{permitted_user, unknown_user};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::history;
use crate::respond::stream_response;
use crate::state::AppState;

pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    user: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    response(&state, permitted_user(&principal, user)?).await
}

/// The CSV of `user`'s history as a download, or `unknown_user`.
pub async fn response(state: &AppState, user: UserId) -> Result<Response, ApiError> {
    let reader = state.trading.reader();
    if reader.account_version(&user).await?.is_none() {
        return Err(unknown_user(&user));
    }
    let disposition = format!("attachment; filename=\"daytrader-history-{user}.csv\"");
    let mut response = stream_response(
        "text/csv; charset=utf-8; header=present",
        history::csv(reader.clone(), user),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("user ids are plain ASCII"),
    );
    Ok(response)
}
