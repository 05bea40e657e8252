//! Notifications: triggers that fired or could not, orders that expired;
//! newest first, marked read one by one or all at once.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::{Reads, Writes};

use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::forms::Posted;
use crate::web::session::{Flash, Trader};
use crate::web::templates::html;
use crate::web::views::NoteRow;

const PAGE_NOTES: usize = 20;

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    notes: Vec<NoteRow>,
    next_before: Option<i64>,
    first_page: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotesQuery {
    before: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    trader: Trader,
    query: Result<Query<NotesQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let chrome = Chrome::trader(&state, &trader, "notifications").await?;
    // One more than shown tells whether an older page follows.
    let mut notes = state
        .trading
        .reader()
        .notifications(&trader.user, query.before, PAGE_NOTES + 1)
        .await?;
    let more = notes.len() > PAGE_NOTES;
    notes.truncate(PAGE_NOTES);
    let page = NotificationsPage {
        chrome,
        next_before: notes.last().filter(|_| more).map(|n| n.id),
        notes: notes.iter().map(NoteRow::of).collect(),
        first_page: query.before.is_none(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct MarkForm {
    /// One notification; all of the trader's when absent.
    id: Option<String>,
}

/// `POST /notifications/read`. Only the signed-in trader's notifications
/// can be marked: an id of someone else's changes nothing.
pub async fn mark_read(
    State(state): State<AppState>,
    posted: Posted<MarkForm>,
) -> Result<Response, PageError> {
    let (trader, form) = posted.trader()?;
    let ids = match form.id.as_deref() {
        None => None,
        Some(id) => Some(vec![id.parse::<i64>().map_err(|_| {
            PageError::bad_request("The notification to mark is not a number.")
        })?]),
    };
    let marked = state
        .trading
        .store()
        .mark_notifications_read(&trader.user, ids)
        .await?;
    let said = match marked {
        0 => "There was nothing unread to mark.".to_owned(),
        1 => "Marked 1 notification as read.".to_owned(),
        n => format!("Marked {n} notifications as read."),
    };
    trader.session.flash(&state, Flash::success(said)).await;
    Ok(Redirect::to("/notifications").into_response())
}
