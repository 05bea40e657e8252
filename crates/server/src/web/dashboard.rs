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
use std::collections::HashMap;

use engine::{Account, CommandName, Money, Summary, Symbol, UserId};
use serde::Deserialize;
use store::{LoadedAccount, PricePoint, StoreError};

use crate::history::{self, Filter};
use crate::service::{SUMMARY_HISTORY, money};
use crate::state::AppState;
use crate::web::charts;
use crate::web::chrome::Chrome;
use crate::web::error::PageError;
use crate::web::format::dollars;
use crate::web::forms::{Field, FormState, Posted, parse_txn};
use crate::web::page_cache::{self, trader_key};
use crate::web::refused::{self, refuse_form};
use crate::web::run::{Sent, act};
use crate::web::session::Trader;
use crate::web::templates::{Fragment, html};
use crate::web::views::{
    Gain, HistoryRow, NoteRow, PendingRow, TriggerRow, first_expiry, holdings, prices,
};

/// How long the dashboard's panels are served from the cache at most:
/// prices move even when the account does not.
const PANELS_TTL: Duration = Duration::from_secs(30);
/// Notifications on the dashboard; the rest are a click away.
const LATEST_NOTES: usize = 5;
/// How many of the trader's latest log rows the value chart goes back
/// over (`charts::value_over_time`): it bounds the chart's span and cost.
const CHART_ROWS: usize = 200;

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
    /// The account's value (cash, reserved cash and holdings); `None`
    /// when a holding has no price.
    value: Option<String>,
    realized: Gain,
    value_chart: Option<Fragment>,
    triggers: Vec<TriggerRow>,
    notes: Vec<NoteRow>,
    activity: Vec<HistoryRow>,
}

pub async fn page(State(state): State<AppState>, trader: Trader) -> Result<Response, PageError> {
    match refused::take_for(&state, &trader, "/").await {
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
    let loaded = load(state, user).await?;
    Ok((loaded.account.summary(now_ms), loaded.version))
}

/// The trader's stored account.
async fn load(state: &AppState, user: &UserId) -> Result<LoadedAccount, PageError> {
    state
        .trading
        .reader()
        .account(user)
        .await?
        .ok_or_else(|| PageError::not_found(format!("There is no account {user} any more.")))
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
    let loaded = load(state, &trader.user).await?;
    let summary = loaded.account.summary(now);
    let key = trader_key("dashboard", &trader.user, loaded.version, "");
    let ttl = view_ttl(&summary, now, PANELS_TTL);
    let panels = page_cache::fragment(
        &state.cache,
        "dashboard",
        &key,
        ttl,
        trader.live_refresh,
        || render_panels(state, &trader.user, &loaded.account, &summary, now),
    )
    .await?;
    let page = DashboardPage {
        cash: dollars(summary.cash),
        reserved: dollars(summary.reserved_cash),
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
    account: &Account,
    summary: &Summary,
    now_ms: i64,
) -> Result<Fragment, PageError> {
    let reader = state.trading.reader();
    let symbols = money::held_symbols(summary);
    let everything = Filter::default();
    let (fresh, notes, history, rows) = tokio::join!(
        prices(state, user, &symbols),
        reader.notifications(user, None, LATEST_NOTES),
        history::page(reader, user, &everything, None, SUMMARY_HISTORY),
        reader.user_log(user, None, CHART_ROWS),
    );
    let rows = rows?;
    // Read after the fetches above, so that their prices are in.
    let (latest, histories) = tokio::join!(
        money::latest_prices(reader, symbols),
        price_histories(state, charts::symbols_in(account, &rows)),
    );
    let valuation = money::value_with(account, summary, &fresh, &latest?);
    let series = charts::value_over_time(account, now_ms, &rows, &histories?);
    let holdings = holdings(&valuation);
    let total = valuation
        .holdings
        .iter()
        .try_fold(Money::ZERO, |total, h| total.checked_add(h.market_value?));
    Fragment::render(&Panels {
        holdings,
        total: total.map(dollars),
        value: valuation.value.map(dollars),
        realized: Gain::of(valuation.realized_gain),
        value_chart: charts::line_chart("value-chart", "Account value", &series)?,
        triggers: TriggerRow::all(summary),
        notes: notes?.iter().map(NoteRow::of).collect(),
        activity: history?.entries.iter().map(HistoryRow::of).collect(),
    })
}

/// The price history of each of `symbols`.
async fn price_histories(
    state: &AppState,
    symbols: Vec<Symbol>,
) -> Result<HashMap<Symbol, Vec<PricePoint>>, StoreError> {
    let reader = state.trading.reader();
    let reads = symbols
        .into_iter()
        .map(|symbol| async move { Ok((symbol, reader.price_history(symbol, None).await?)) });
    futures::future::try_join_all(reads)
        .await
        .map(|all| all.into_iter().collect())
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
