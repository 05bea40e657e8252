//! The trader's audit trail, newest first, in pages; and their DUMPLOG.

use std::time::Duration;
use store::Reads;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use engine::{CommandName, CommandRequest};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::xml_response;
use crate::service;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::dashboard::account;
use crate::web::error::PageError;
use crate::web::page_cache::{self, trader_key};
use crate::web::session::Trader;
use crate::web::templates::{Fragment, html};
use crate::web::views::HistoryRow;

/// Log rows per page.
const PAGE_ROWS: usize = 25;
/// A page of history changes only with the account version, which its key
/// holds; the TTL only frees the cache of pages nobody reads.
const PAGE_TTL: Duration = Duration::from_secs(300);

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPageView {
    chrome: Chrome,
    first_page: bool,
    table: Fragment,
}

#[derive(Template)]
#[template(path = "fragments/history.html")]
struct HistoryTable {
    rows: Vec<HistoryRow>,
    next_before: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only rows older than this one (the previous page's last).
    before: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    trader: Trader,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let chrome = Chrome::trader(&state, &trader, "history").await?;
    let (_, version) = account(&state, &trader.user, chrome.now_ms).await?;
    let params = query.before.map(|b| b.to_string()).unwrap_or_default();
    let key = trader_key("history", &trader.user, version, &params);
    let table = page_cache::fragment(&state.cache, "history", &key, PAGE_TTL, || async {
        let page = state
            .trading
            .reader()
            .history_page(&trader.user, query.before, PAGE_ROWS)
            .await?;
        Fragment::render(&HistoryTable {
            rows: page.items.iter().map(HistoryRow::of).collect(),
            next_before: page.next_before,
        })
    })
    .await?;
    let page = HistoryPageView {
        chrome,
        first_page: query.before.is_none(),
        table,
    };
    html(StatusCode::OK, &page)
}

/// `GET /history/log.xml`: the trader's DUMPLOG, run as the command (so
/// it is in the log it streams) and downloaded as a file.
pub async fn download_log(
    State(state): State<AppState>,
    trader: Trader,
) -> Result<Response, PageError> {
    let request = CommandRequest::new(
        CommandName::DumpLog,
        Some(trader.user.as_str()),
        None,
        None,
        None,
    )
    .map_err(ApiError::from)?;
    let caller = Principal::User(trader.user.clone());
    let dump = service::dump_log(&state.trading, &caller, request, None).await?;
    let mut response = xml_response(dump.chunks);
    let disposition = format!("attachment; filename=\"daytrader-log-{}.xml\"", trader.user);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("user ids are plain ASCII"),
    );
    Ok(response)
}
