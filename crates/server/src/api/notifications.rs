//! A trader's notifications: triggers that fired or could not, orders that
//! expired. Newest first, paged by id.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use store::{Notification, Reads, Writes};

use crate::api::users::{permitted_user, unknown_user};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::json_response;
use crate::state::AppState;

/// The most notifications one page may hold.
pub const MAX_PAGE: usize = 100;
const DEFAULT_PAGE: usize = 20;
/// The most notifications one request may mark read.
pub const MAX_MARK_READ: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Only notifications older than this id (the previous page's `next_before`).
    before: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Page {
    notifications: Vec<Notification>,
    unread: u64,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    user: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = permitted_user(&principal, user)?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("malformed_query", e.body_text()))?;
    if query.before.is_some_and(|before| before < 1) {
        return Err(ApiError::bad_request(
            "invalid_before",
            "before must be a notification id, a positive integer.",
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be from 1 to {MAX_PAGE}."),
        ));
    }
    let reader = state.trading.reader();
    if reader.account(&user).await?.is_none() {
        return Err(unknown_user(&user));
    }
    // One more than asked tells whether there is a next page.
    let mut notifications = reader.notifications(&user, query.before, limit + 1).await?;
    let next_before = if notifications.len() > limit {
        notifications.truncate(limit);
        notifications.last().map(|n| n.id)
    } else {
        None
    };
    let page = Page {
        unread: reader.unread_notifications(&user).await?,
        notifications,
        next_before,
    };
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&page).expect("plain data serializes"),
    ))
}

/// The body: a JSON object (serde alone would take the fields as an array).
#[derive(Deserialize)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct MarkRead {
    ids: Option<Vec<i64>>,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for MarkRead {
    type Error = serde_json::Error;

    fn try_from(object: serde_json::Map<String, serde_json::Value>) -> Result<Self, Self::Error> {
        let fields: MarkReadFields = serde_json::from_value(serde_json::Value::Object(object))?;
        Ok(MarkRead { ids: fields.ids })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkReadFields {
    /// The notifications to mark; all of the user's when absent. Whole
    /// floats (`3.0`) are integers, as in JSON Schema.
    #[serde(default, deserialize_with = "engine::whole_number::option_vec")]
    ids: Option<Vec<i64>>,
}

pub async fn mark_read(
    State(state): State<AppState>,
    principal: Principal,
    user: Result<Path<String>, PathRejection>,
    body: Result<Json<MarkRead>, JsonRejection>,
) -> Result<Response, ApiError> {
    let user = permitted_user(&principal, user)?;
    let Json(body) = body.map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send Content-Type: application/json.",
        ),
        other => ApiError::bad_request("malformed_json", other.body_text()),
    })?;
    if body
        .ids
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_MARK_READ)
    {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!("At most {MAX_MARK_READ} ids at once."),
        ));
    }
    if state.trading.reader().account(&user).await?.is_none() {
        return Err(unknown_user(&user));
    }
    let marked = state
        .trading
        .store()
        .mark_notifications_read(&user, body.ids)
        .await?;
    let body = serde_json::json!({ "marked": marked });
    Ok(json_response(StatusCode::OK, body.to_string().into_bytes()))
}
