//! Buy and sell triggers, in the order the commands take them: first the
//! amount (SET_BUY_AMOUNT reserves cash; SET_SELL_AMOUNT names what to
//! sell), then the price that arms the trigger; and cancelling either.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::CommandName;
use serde::Deserialize;

use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::dashboard::account;
use crate::web::error::PageError;
use crate::web::format::dollars;
use crate::web::forms::{Field, FormState, Posted, SymbolAmount, new_txn, parse_txn};
use crate::web::refused::{self, refuse_form};
use crate::web::run::{Sent, act};
use crate::web::session::Trader;
use crate::web::templates::html;
use crate::web::trade::missing;
use crate::web::views::TriggerRow;

#[derive(Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    chrome: Chrome,
    cash: String,
    buy_amount: FormState,
    sell_amount: FormState,
    rows: Vec<RowForms>,
    /// A refusal about a trigger no longer listed (cancelled meanwhile).
    notice: Option<String>,
}

/// A trigger with its two forms: set (or change) the price, and cancel.
struct RowForms {
    row: TriggerRow,
    price: FormState,
    cancel_txn: i64,
    /// A refusal of this row's price or cancel form.
    error: Option<String>,
}

/// The side a path names.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

impl Side {
    fn parse(text: &str) -> Result<Side, PageError> {
        match text {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err(PageError::not_found("Triggers are buy or sell triggers.")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// What the page shows refused, and where.
enum Refused {
    Nothing,
    /// The amount form of a side.
    Amount(Side, FormState),
    /// A trigger's row: its side and symbol, the price typed, the message.
    Row(Side, String, String, String),
}

const PAGE: &str = "/triggers";

pub async fn page(State(state): State<AppState>, trader: Trader) -> Result<Response, PageError> {
    let Some(kept) = refused::take_for(&state, &trader, PAGE).await else {
        return render(&state, &trader, Refused::Nothing, StatusCode::OK).await;
    };
    // Kept forms are called `amount:<side>`, `price:<side>` or
    // `cancel:<side>`.
    let (kind, side) = kept.form.split_once(':').unwrap_or_default();
    let refused = match (kind, Side::parse(side)) {
        ("amount", Ok(side)) => Refused::Amount(side, kept.form_state()),
        ("price" | "cancel", Ok(side)) => {
            Refused::Row(side, kept.get("symbol"), kept.get("amount"), kept.message())
        }
        _ => Refused::Nothing,
    };
    render(&state, &trader, refused, kept.status()).await
}

async fn render(
    state: &AppState,
    trader: &Trader,
    refused: Refused,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::trader(state, trader, "triggers").await?;
    let (summary, _) = account(state, &trader.user, chrome.now_ms).await?;
    let mut page = TriggersPage {
        cash: dollars(summary.cash),
        buy_amount: FormState::fresh(),
        sell_amount: FormState::fresh(),
        rows: TriggerRow::all(&summary)
            .into_iter()
            .map(|row| RowForms {
                price: FormState {
                    amount: row.price_input.clone(),
                    ..FormState::with_symbol(row.symbol.clone())
                },
                cancel_txn: new_txn(),
                error: None,
                row,
            })
            .collect(),
        notice: None,
        chrome,
    };
    match refused {
        Refused::Nothing => {}
        Refused::Amount(Side::Buy, form) => page.buy_amount = form,
        Refused::Amount(Side::Sell, form) => page.sell_amount = form,
        Refused::Row(side, symbol, price, message) => {
            let row = page
                .rows
                .iter_mut()
                .find(|r| r.row.side == side.as_str() && r.row.symbol == symbol);
            match row {
                Some(row) => {
                    row.price.amount = price;
                    row.error = Some(message);
                }
                None => page.notice = Some(message),
            }
        }
    }
    html(status, &page)
}

/// `POST /triggers/{side}/amount`: SET_BUY_AMOUNT or SET_SELL_AMOUNT.
pub async fn set_amount(
    State(state): State<AppState>,
    Path(side): Path<String>,
    posted: Posted<SymbolAmount>,
) -> Result<Response, PageError> {
    let side = Side::parse(&side)?;
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let (symbol, amount) = (form.symbol.trim(), form.amount.trim());
    let slot = format!("amount:{}", side.as_str());
    if let Some((field, message)) = missing(symbol, amount, "an amount") {
        let invalid = FormState::invalid(symbol, amount, field, &message);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse_form(&state, &trader.session, PAGE, &slot, status, &invalid).await;
    }
    let name = match side {
        Side::Buy => CommandName::SetBuyAmount,
        Side::Sell => CommandName::SetSellAmount,
    };
    let sent = Sent {
        name,
        symbol: Some(symbol),
        amount: Some(amount),
        txn,
    };
    act(&state, &trader, sent, PAGE, &slot).await
}

#[derive(Deserialize)]
pub struct PriceForm {
    #[serde(default)]
    txn: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    price: String,
}

/// `POST /triggers/{side}/price`: SET_BUY_TRIGGER or SET_SELL_TRIGGER.
pub async fn set_price(
    State(state): State<AppState>,
    Path(side): Path<String>,
    posted: Posted<PriceForm>,
) -> Result<Response, PageError> {
    let side = Side::parse(&side)?;
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let (symbol, price) = (form.symbol.trim(), form.price.trim());
    let slot = format!("price:{}", side.as_str());
    if price.is_empty() {
        let invalid = FormState::invalid(
            symbol,
            price,
            Field::Amount,
            "Enter the price to trigger at.",
        );
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return refuse_form(&state, &trader.session, PAGE, &slot, status, &invalid).await;
    }
    let name = match side {
        Side::Buy => CommandName::SetBuyTrigger,
        Side::Sell => CommandName::SetSellTrigger,
    };
    let sent = Sent {
        name,
        symbol: Some(symbol),
        amount: Some(price),
        txn,
    };
    act(&state, &trader, sent, PAGE, &slot).await
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    txn: String,
    #[serde(default)]
    symbol: String,
}

/// `POST /triggers/{side}/cancel`: CANCEL_SET_BUY or CANCEL_SET_SELL.
pub async fn cancel(
    State(state): State<AppState>,
    Path(side): Path<String>,
    posted: Posted<CancelForm>,
) -> Result<Response, PageError> {
    let side = Side::parse(&side)?;
    let (trader, form) = posted.trader()?;
    let txn = parse_txn(&form.txn)?;
    let symbol = form.symbol.trim();
    let name = match side {
        Side::Buy => CommandName::CancelSetBuy,
        Side::Sell => CommandName::CancelSetSell,
    };
    let sent = Sent {
        name,
        symbol: Some(symbol),
        amount: None,
        txn,
    };
    let slot = format!("cancel:{}", side.as_str());
    act(&state, &trader, sent, PAGE, &slot).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_is_buy_or_sell() {
        assert!(Side::parse("buy").is_ok_and(|s| s == Side::Buy));
        assert!(Side::parse("sell").is_ok_and(|s| s.as_str() == "sell"));
        assert!(Side::parse("BUY").is_err());
    }
}
