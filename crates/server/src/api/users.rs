//! `GET /api/v1/users/{user}`: a trader's summary, as a read (the audited
//! DISPLAY_SUMMARY command goes through `POST /api/v1/commands`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::{RejectCode, Rejection, UserId};
use store::Reads;

use crate::api::shapes::SummaryView;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::json_response;
use crate::service::SUMMARY_HISTORY;
use crate::state::AppState;

pub async fn summary(
    State(state): State<AppState>,
    principal: Principal,
    user: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let user = parse_user(user)?;
    principal.check(&user)?;
    let reader = state.trading.reader();
    let Some(loaded) = reader.account(&user).await? else {
        return Err(unknown_user(&user));
    };
    let summary = loaded.account.summary((state.clock)());
    let history = reader.history(&user, SUMMARY_HISTORY).await?;
    let view = SummaryView {
        user: user.as_str(),
        summary: &summary,
        history,
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&view).expect("plain data serializes"),
    ))
}

pub fn parse_user(path: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request("malformed_path", e.body_text()))?;
    UserId::parse(&text).map_err(|e| ApiError::bad_request("invalid_user", e.to_string()))
}

pub fn unknown_user(user: &UserId) -> ApiError {
    ApiError::from(Rejection::new(
        RejectCode::UnknownUser,
        format!("There is no user {user}: a user comes into being with their first ADD."),
    ))
}
