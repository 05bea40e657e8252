//! The supervisor's page: the system's status, every account (paged), and
//! the whole system's DUMPLOG.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use engine::{CommandName, CommandRequest, UserId};
use serde::Deserialize;
use store::Reads;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::respond::xml_response;
use crate::service;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::format::dollars;
use crate::web::refused;
use crate::web::session::Supervisor;
use crate::web::templates::html;

const PAGE_USERS: usize = 50;

/// The metrics the status panel sums (over every label) from this
/// instance's Prometheus registry.
const KEY_METRICS: &[(&str, &str)] = &[
    ("http_requests_total", "HTTP requests"),
    ("commands_total", "Commands run"),
    ("quote_requests_total", "Quote service requests"),
    ("quote_cost_cents_total", "Quote cost (cents)"),
    ("triggers_fired_total", "Triggers fired"),
    ("page_cache_hits_total", "Page cache hits"),
    ("page_cache_misses_total", "Page cache misses"),
];

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    database: (bool, String),
    cache: (bool, String),
    metrics: Vec<(&'static str, String)>,
    users: Vec<UserRow>,
    next_after: Option<String>,
    first_page: bool,
    /// The sign-in link form, as it was refused (if it was).
    link_user: String,
    link_error: Option<String>,
}

struct UserRow {
    user: String,
    cash: String,
    reserved: String,
    holdings: usize,
    pending: usize,
    triggers: usize,
    version: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    /// Only users after this one (the previous page's last).
    after: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    supervisor: Supervisor,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let after = query
        .after
        .as_deref()
        .map(UserId::parse)
        .transpose()
        .map_err(|e| PageError::bad_request(e.to_string()))?;
    let chrome = Chrome::supervisor(&state, &supervisor).await;
    let kept = refused::take(&state, &supervisor.session, "/admin").await;
    let reader = state.trading.reader();
    let database = match reader.ping().await {
        Ok(()) => (true, "answering".to_owned()),
        Err(error) => (false, error.to_string()),
    };
    let cache = match (&state.cache, state.cache.status()) {
        (cache::Cache::Memory(_), _) => (true, "in this process (embedded)".to_owned()),
        (_, cache::CacheStatus::Up) => (true, "Redis answering".to_owned()),
        (_, cache::CacheStatus::Down { reason, .. }) => {
            (false, format!("Redis unavailable: {reason}"))
        }
    };
    let accounts = if database.0 {
        reader.accounts_page(after.as_ref(), PAGE_USERS).await?
    } else {
        Vec::new()
    };
    let now = chrome.now_ms;
    let users = accounts
        .iter()
        .map(|(user, loaded)| {
            let summary = loaded.account.summary(now);
            UserRow {
                user: user.to_string(),
                cash: dollars(summary.cash),
                reserved: dollars(summary.reserved_cash),
                holdings: summary.holdings.len(),
                pending: summary.pending_buys.len() + summary.pending_sells.len(),
                triggers: summary.buy_triggers.len() + summary.sell_triggers.len(),
                version: loaded.version,
            }
        })
        .collect();
    let page = AdminPage {
        chrome,
        database,
        cache,
        metrics: key_metrics(&state.metrics.render()),
        next_after: (accounts.len() == PAGE_USERS)
            .then(|| accounts.last().map(|(user, _)| user.to_string()))
            .flatten(),
        first_page: after.is_none(),
        users,
        link_user: kept.as_ref().map(|k| k.get("user")).unwrap_or_default(),
        link_error: kept.as_ref().and_then(|k| k.error_of("user")),
    };
    html(kept.map_or(StatusCode::OK, |k| k.status()), &page)
}

/// The totals of [`KEY_METRICS`] in Prometheus's text format.
fn key_metrics(text: &str) -> Vec<(&'static str, String)> {
    KEY_METRICS
        .iter()
        .map(|&(name, label)| {
            let total: f64 = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    let metric = series.split('{').next()?;
                    (metric == name).then(|| value.parse::<f64>().ok())?
                })
                // Not `sum()`: an empty f64 sum is -0.0, shown as "-0".
                .fold(0.0, |total, value| total + value);
            (label, format!("{total:.0}"))
        })
        .collect()
}

/// `GET /admin/log.xml`: the whole system's DUMPLOG, run as the command.
pub async fn download_log(
    State(state): State<AppState>,
    _supervisor: Supervisor,
) -> Result<Response, PageError> {
    let request = CommandRequest::new(CommandName::DumpLog, None, None, None, None)
        .map_err(ApiError::from)?;
    let dump = service::dump_log(&state.trading, &Principal::Supervisor, request, None).await?;
    let mut response = xml_response(dump.chunks);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"daytrader-log.xml\""),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_metrics_sum_every_series_of_a_name() {
        let text = "# HELP commands_total x\n\
                    commands_total{command=\"ADD\",outcome=\"accepted\"} 3\n\
                    commands_total{command=\"BUY\",outcome=\"refused\"} 2\n\
                    commands_total_other 100\n\
                    page_cache_hits_total{page=\"dashboard\"} 7\n";
        let metrics = key_metrics(text);
        let get = |label| metrics.iter().find(|(l, _)| *l == label).unwrap().1.clone();
        assert_eq!(get("Commands run"), "5");
        assert_eq!(get("Page cache hits"), "7");
        assert_eq!(get("Triggers fired"), "0");
    }
}
