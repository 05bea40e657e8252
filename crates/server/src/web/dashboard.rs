//! The dashboard: balances and pending orders (from the account, read on
//! every view), and the panels that cost queries and quotes (holdings with
//! their value, triggers, notifications, recent activity) from the page
//! cache; and adding funds.

use std::time::Duration;
use store::Reads;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use engine::{CommandName, Summary, UserId};
use serde::Deserialize;

use crate::history::{self, Filter};
use crate::service::SUMMARY_HISTORY;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::forms::{Field, FormState, Posted, parse_txn};
use crate::web::page_cache::{self, trader_key};
use crate::web::refused::{self, refuse_form};
use crate::web::run::{Sent, act};
use crate::web::session::Trader;
use crate::web::templates::{Fragment, html};
use crate::web::views::{
    HistoryRow, NoteRow, PendingRow, TriggerRow, first_expiry, holdings, prices,
};

/// How long the dashboard's panels are served from the cache at most:
/// prices move even when the account does not.
const PANELS_TTL: Duration = Duration::from_secs(30);
/// Notifications on the dashboard; the rest are a click away.
const LATEST_NOTES: usize = 5;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    cash: String,
    reserved: String,
    buys: Vec<PendingRow>,
    sells: Vec<PendingRow>,
    funds: FormState,
    panels: Fragment,
}

#[derive(Template)]
#[template(path = "fragments/dashboard.html")]
struct Panels {
    holdings: Vec<crate::web::views::HoldingRow>,
    total: Option<String>,
    triggers: Vec<TriggerRow>,
    notes: Vec<NoteRow>,
    activity: Vec<HistoryRow>,
}

pub async fn page(State(state): State<AppState>, trader: Trader) -> Result<Response, PageError> {
    match refused::take(&state, &trader.session, "/").await {
        Some(kept) => render(&state, &trader, kept.form_state(), kept.status()).await,
        None => render(&state, &trader, FormState::fresh(), StatusCode::OK).await,
    }
}

/// The trader's account as it stands now, and its version.
pub async fn account(
    state: &AppState,
    user: &UserId,
    now_ms: i64,
) -> Result<(Summary, i64), PageError> {
    let loaded = state
        .trading
        .reader()
        .account(user)
        .await?
        .ok_or_else(|| PageError::not_found(format!("There is no account {user} any more.")))?;
    Ok((loaded.account.summary(now_ms), loaded.version))
}

/// How long a view of `summary` may be served: no longer than the panels'
/// TTL, nor past the moment its first pending order runs out (which gives
/// back what it held).
pub fn view_ttl(summary: &Summary, now_ms: i64, at_most: Duration) -> Duration {
    match first_expiry(summary) {
        Some(expiry) => {
            let left = Duration::from_millis(u64::try_from(expiry - now_ms).unwrap_or(0));
            at_most.min(left).max(Duration::from_millis(1))
        }
        None => at_most,
    }
}

async fn render(
    state: &AppState,
    trader: &Trader,
    funds: FormState,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::trader(state, trader, "dashboard").await?;
    let now = chrome.now_ms;
    let (summary, version) = account(state, &trader.user, now).await?;
    let key = trader_key("dashboard", &trader.user, version, "");
    let ttl = view_ttl(&summary, now, PANELS_TTL);
    let panels = page_cache::fragment_for(
        &state.cache,
        "dashboard",
        &key,
        ttl,
        trader.live_refresh,
        || render_panels(state, &trader.user, &summary),
    )
    .await?;
    let page = DashboardPage {
        cash: crate::web::format::dollars(summary.cash),
        reserved: crate::web::format::dollars(summary.reserved_cash),
        buys: PendingRow::all(&summary.pending_buys, now),
        sells: PendingRow::all(&summary.pending_sells, now),
        funds,
        panels,
        chrome,
    };
    html(status, &page)
}

async fn render_panels(
    state: &AppState,
    user: &UserId,
    summary: &Summary,
) -> Result<Fragment, PageError> {
    let reader = state.trading.reader();
    let symbols: Vec<_> = summary.holdings.iter().map(|h| h.symbol).collect();
    let everything = Filter::default();
    let (prices, notes, history) = tokio::join!(
        prices(state, user, &symbols),
        reader.notifications(user, None, LATEST_NOTES),
        history::page(reader, user, &everything, None, SUMMARY_HISTORY),
    );
    let (holdings, total) = holdings(summary, &prices);
    Fragment::render(&Panels {
        holdings,
        total,
        triggers: TriggerRow::all(summary),
        notes: notes?.iter().map(NoteRow::of).collect(),
        activity: history?.entries.iter().map(HistoryRow::of).collect(),
    })
}

#[derive(Deserialize)]
pub struct FundsForm {
    #[serde(default)]
    txn: String,
    #[serde(default)]
    amount: String,
}

/// `POST /funds`: ADD.
pub async fn add_funds(
    State(state): State<AppState>,
    posted: Posted<FundsForm>,
) -> Result<Response, PageError> {
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let amount = form.amount.trim();
    if amount.is_empty() {
        let funds = FormState::invalid("", "", Field::Amount, "Enter the amount to add.");
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse_form(&state, &trader.session, "/", "funds", status, &funds).await;
    }
    let sent = Sent {
        name: CommandName::Add,
        symbol: None,
        amount: Some(amount),
        txn,
    };
    act(&state, &trader, sent, "/", "funds").await
}
