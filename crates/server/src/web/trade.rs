//! Buying and selling with the confirm-or-cancel step: a BUY or SELL puts
//! an order on hold for 60 seconds; the page then shows it with Commit and
//! Cancel, and a countdown.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::CommandName;
use serde::Deserialize;

use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::dashboard::account;
use crate::web::error::PageError;
use crate::web::format::dollars;
use crate::web::forms::{Field, FormState, Posted, SymbolAmount, parse_txn};
use crate::web::refused::{self, refuse_form};
use crate::web::run::{Sent, act};
use crate::web::session::Trader;
use crate::web::templates::html;
use crate::web::views::PendingRow;

#[derive(Template)]
#[template(path = "trade.html")]
struct TradePage {
    chrome: Chrome,
    cash: String,
    buys: Vec<PendingRow>,
    sells: Vec<PendingRow>,
    /// Shares that can be sold now, by symbol.
    holdings: Vec<(String, i64)>,
    forms: Forms,
}

/// Every form of the trade page.
struct Forms {
    buy: FormState,
    sell: FormState,
    /// Commit or cancel the newest pending buy.
    buy_decision: FormState,
    sell_decision: FormState,
}

impl Forms {
    fn fresh(symbol: &str) -> Forms {
        Forms {
            buy: FormState::with_symbol(symbol.to_owned()),
            sell: FormState::with_symbol(symbol.to_owned()),
            buy_decision: FormState::fresh(),
            sell_decision: FormState::fresh(),
        }
    }

    /// The slot of the form called `name` on the page.
    fn named(&mut self, name: &str) -> Option<&mut FormState> {
        match name {
            "buy" => Some(&mut self.buy),
            "sell" => Some(&mut self.sell),
            "pending-buy" => Some(&mut self.buy_decision),
            "pending-sell" => Some(&mut self.sell_decision),
            _ => None,
        }
    }
}

const PAGE: &str = "/trade";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeQuery {
    /// Fills the symbol in (from a quote's Buy and Sell buttons).
    symbol: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    trader: Trader,
    query: Result<Query<TradeQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let symbol = query
        .symbol
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let mut forms = Forms::fresh(&symbol);
    let mut status = StatusCode::OK;
    if let Some(kept) = refused::take_for(&state, &trader, PAGE).await
        && let Some(slot) = forms.named(&kept.form)
    {
        *slot = kept.form_state();
        status = kept.status();
    }
    render(&state, &trader, forms, status).await
}

async fn render(
    state: &AppState,
    trader: &Trader,
    forms: Forms,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::trader(state, trader, "trade").await?;
    let now = chrome.now_ms;
    let (summary, _) = account(state, &trader.user, now).await?;
    let page = TradePage {
        cash: dollars(summary.cash),
        buys: PendingRow::all(&summary.pending_buys, now),
        sells: PendingRow::all(&summary.pending_sells, now),
        holdings: summary
            .holdings
            .iter()
            .map(|h| (h.symbol.to_string(), h.shares))
            .collect(),
        forms,
        chrome,
    };
    html(status, &page)
}

/// What is missing from an order form, before anything runs.
pub fn missing(symbol: &str, amount: &str, amount_words: &str) -> Option<(Field, String)> {
    if symbol.is_empty() {
        Some((Field::Symbol, "Enter a stock symbol.".to_owned()))
    } else if amount.is_empty() {
        Some((Field::Amount, format!("Enter {amount_words}.")))
    } else {
        None
    }
}

/// `POST /trade/buy` and `/trade/sell`.
async fn order(
    state: AppState,
    posted: Posted<SymbolAmount>,
    name: CommandName,
) -> Result<Response, PageError> {
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let symbol = form.symbol.trim();
    let amount = form.amount.trim();
    let slot = match name {
        CommandName::Buy => "buy",
        _ => "sell",
    };
    if let Some((field, message)) = missing(symbol, amount, "the amount of money to trade") {
        let invalid = FormState::invalid(symbol, amount, field, &message);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse_form(&state, &trader.session, PAGE, slot, status, &invalid).await;
    }
    let sent = Sent {
        name,
        symbol: Some(symbol),
        amount: Some(amount),
        txn,
    };
    act(&state, &trader, sent, PAGE, slot).await
}

pub async fn buy(
    State(state): State<AppState>,
    posted: Posted<SymbolAmount>,
) -> Result<Response, PageError> {
    order(state, posted, CommandName::Buy).await
}

pub async fn sell(
    State(state): State<AppState>,
    posted: Posted<SymbolAmount>,
) -> Result<Response, PageError> {
    order(state, posted, CommandName::Sell).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    txn: String,
    /// `commit` or `cancel`: the two buttons of one form, so that a double
    /// click on either runs one decision.
    #[serde(default)]
    action: String,
}

/// `POST /trade/pending-buy` and `/trade/pending-sell`: commit or cancel
/// the newest pending order of the side.
async fn decide(
    state: AppState,
    posted: Posted<DecisionForm>,
    buy: bool,
) -> Result<Response, PageError> {
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let name = match (buy, form.action.as_str()) {
        (true, "commit") => CommandName::CommitBuy,
        (true, "cancel") => CommandName::CancelBuy,
        (false, "commit") => CommandName::CommitSell,
        (false, "cancel") => CommandName::CancelSell,
        _ => {
            return Err(PageError::bad_request(
                "The form must say commit or cancel.",
            ));
        }
    };
    let sent = Sent {
        name,
        symbol: None,
        amount: None,
        txn,
    };
    let slot = if buy { "pending-buy" } else { "pending-sell" };
    act(&state, &trader, sent, PAGE, slot).await
}

pub async fn decide_buy(
    State(state): State<AppState>,
    posted: Posted<DecisionForm>,
) -> Result<Response, PageError> {
    decide(state, posted, true).await
}

pub async fn decide_sell(
    State(state): State<AppState>,
    posted: Posted<DecisionForm>,
) -> Result<Response, PageError> {
    decide(state, posted, false).await
}
