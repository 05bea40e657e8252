//! The trader's history, newest first, in pages, filtered by kind and
//! symbol; and its downloads: the CSV and the DUMPLOG.

use std::time::Duration;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use engine::{CommandName, CommandRequest, Symbol};
use serde::Deserialize;

use crate::api::history_csv;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::history::{self, Filter, Kind};
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
    /// The filter's menu: each kind's value, label, and whether chosen.
    kinds: Vec<(&'static str, &'static str, bool)>,
    any_kind: bool,
    symbol: String,
    /// The filter as a query string (`kind=trade&symbol=ABC`), for the
    /// links that keep it; empty without one.
    filter_query: String,
    table: Fragment,
}

#[derive(Template)]
#[template(path = "fragments/history.html")]
struct HistoryTable {
    rows: Vec<HistoryRow>,
    next_before: Option<i64>,
    filter_query: String,
    filtered: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only rows older than this one (the previous page's last).
    before: Option<i64>,
    /// Only lines of this kind ([`Kind::as_str`]); empty for all.
    #[serde(default)]
    kind: String,
    /// Only lines about this symbol; empty for all.
    #[serde(default)]
    symbol: String,
}

impl HistoryQuery {
    fn filter(&self) -> Result<Filter, PageError> {
        let kind = match self.kind.as_str() {
            "" => None,
            text => Some(Kind::parse(text).ok_or_else(|| {
                PageError::bad_request(format!("{text:?} is not a kind of history line."))
            })?),
        };
        let symbol = match self.symbol.trim() {
            "" => None,
            text => Some(Symbol::parse(text).map_err(|e| PageError::bad_request(e.to_string()))?),
        };
        Ok(Filter { kind, symbol })
    }
}

/// The filter as a query string, for links that keep it.
fn filter_query(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(kind) = filter.kind {
        parts.push(format!("kind={}", kind.as_str()));
    }
    if let Some(symbol) = filter.symbol {
        parts.push(format!("symbol={symbol}"));
    }
    parts.join("&")
}

pub async fn page(
    State(state): State<AppState>,
    trader: Trader,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let filter = query.filter()?;
    let chrome = Chrome::trader(&state, &trader, "history").await?;
    let (_, version) = account(&state, &trader.user, chrome.now_ms).await?;
    let filter_query = filter_query(&filter);
    let params = format!(
        "{}|{filter_query}",
        query.before.map(|b| b.to_string()).unwrap_or_default()
    );
    let key = trader_key("history", &trader.user, version, &params);
    // The history shows no prices: its key says all that changes it, so a
    // live refresh may be served the stored table.
    let live_refresh = false;
    let table = page_cache::fragment(
        &state.cache,
        "history",
        &key,
        PAGE_TTL,
        live_refresh,
        || async {
            let reader = state.trading.reader();
            let page =
                history::page(reader, &trader.user, &filter, query.before, PAGE_ROWS).await?;
            Fragment::render(&HistoryTable {
                rows: page.entries.iter().map(HistoryRow::of).collect(),
                next_before: page.next_before,
                filter_query: filter_query.clone(),
                filtered: filter != Filter::default(),
            })
        },
    )
    .await?;
    let page = HistoryPageView {
        chrome,
        first_page: query.before.is_none(),
        kinds: Kind::ALL
            .iter()
            .map(|k| (k.as_str(), k.label(), filter.kind == Some(*k)))
            .collect(),
        any_kind: filter.kind.is_none(),
        symbol: filter.symbol.map(|s| s.to_string()).unwrap_or_default(),
        filter_query,
        table,
    };
    html(StatusCode::OK, &page)
}

/// `GET /history/history.csv`: the trader's history as CSV, through their
/// session (the API's `GET /api/v1/users/{user}/history.csv` for a page).
pub async fn download_csv(
    State(state): State<AppState>,
    trader: Trader,
) -> Result<Response, PageError> {
    Ok(history_csv::response(&state, trader.user).await?)
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
