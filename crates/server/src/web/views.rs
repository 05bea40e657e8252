//! What the pages show of an account, ready to print: the engine's summary
//! and the store's history and notifications, with money and times in the
//! pages' format. Several pages show the same rows; they are made here once.

use std::collections::HashMap;
use std::time::Duration;

use engine::{Money, PendingView, Summary, Symbol, UserId, Valuation};
use store::{Notification, NotificationKind};

use crate::history::{self, Amount};
use crate::state::AppState;
use crate::web::format::{dollars, utc};

/// A pending buy or sell, waiting for its commit.
pub struct PendingRow {
    pub symbol: String,
    pub shares: i64,
    pub price: String,
    pub amount: String,
    pub expires_at_ms: i64,
    /// As the page is made; the script counts down from here.
    pub seconds_left: i64,
}

impl PendingRow {
    pub fn of(view: &PendingView, now_ms: i64) -> PendingRow {
        PendingRow {
            symbol: view.symbol.to_string(),
            shares: view.shares,
            price: dollars(view.price),
            amount: dollars(view.amount),
            expires_at_ms: view.expires_at_ms,
            seconds_left: ((view.expires_at_ms - now_ms).max(0) as u64).div_ceil(1000) as i64,
        }
    }

    pub fn all(views: &[PendingView], now_ms: i64) -> Vec<PendingRow> {
        views
            .iter()
            .map(|view| PendingRow::of(view, now_ms))
            .collect()
    }
}

/// When the first pending order of `summary` runs out, if any: a view that
/// shows it must not outlive that moment.
pub fn first_expiry(summary: &Summary) -> Option<i64> {
    summary
        .pending_buys
        .iter()
        .chain(&summary.pending_sells)
        .map(|p| p.expires_at_ms)
        .min()
}

/// Shares of one symbol, with their value at the current price when one
/// could be had.
pub struct HoldingRow {
    pub symbol: String,
    pub shares: i64,
    pub reserved_shares: i64,
    /// What the shares owned cost each, on average.
    pub average_price: Option<String>,
    pub price: Option<String>,
    pub value: Option<String>,
    /// Value − cost basis.
    pub gain: Option<Gain>,
}

/// A buy or sell trigger as it stands.
pub struct TriggerRow {
    pub side: &'static str,
    pub symbol: String,
    /// Set aside (buy) or to sell (sell).
    pub amount: String,
    pub trigger_price: Option<String>,
    /// The trigger price as a form takes it back (`1234.50`), so that the
    /// "change price" box starts at it; empty when unarmed.
    pub price_input: String,
    /// Shares held back for a sell trigger.
    pub reserved_shares: i64,
}

impl TriggerRow {
    /// Every trigger of `summary`, buys first, each side by symbol.
    pub fn all(summary: &Summary) -> Vec<TriggerRow> {
        let buys = summary.buy_triggers.iter().map(|t| TriggerRow {
            side: "buy",
            symbol: t.symbol.to_string(),
            amount: dollars(t.amount),
            trigger_price: t.trigger_price.map(dollars),
            price_input: price_input(t.trigger_price),
            reserved_shares: 0,
        });
        let sells = summary.sell_triggers.iter().map(|t| TriggerRow {
            side: "sell",
            symbol: t.symbol.to_string(),
            amount: dollars(t.amount),
            trigger_price: t.trigger_price.map(dollars),
            price_input: price_input(t.trigger_price),
            reserved_shares: t.reserved_shares,
        });
        buys.chain(sells).collect()
    }
}

/// A price in the wire format a money field parses, or nothing.
fn price_input(price: Option<Money>) -> String {
    price.map(|p| p.to_string()).unwrap_or_default()
}

/// A line of the history, ready to print (made from a [`history::Entry`]).
pub struct HistoryRow {
    pub when: String,
    /// The whole transaction number (a title shows it)...
    pub txn: i64,
    /// ...and its last digits, which tell a trader's recent steps apart.
    pub txn_short: String,
    /// The command in words.
    pub command: &'static str,
    pub symbol: String,
    /// In dollars when it was an amount, as typed when not.
    pub amount: String,
    /// The amount as typed was not an amount.
    pub amount_invalid: bool,
    /// "3 at $10.50", for a fill.
    pub filled: String,
    pub cash_after: String,
    pub ok: bool,
    /// The refusal's code.
    pub outcome: &'static str,
    pub message: String,
}

/// Digits of a transaction number shown in full; a longer one shows its
/// last ones after an ellipsis.
const TXN_DIGITS: usize = 6;

impl HistoryRow {
    pub fn of(entry: &history::Entry) -> HistoryRow {
        let txn = entry.txn.to_string();
        let txn_short = match txn.len().checked_sub(TXN_DIGITS) {
            Some(cut) if cut > 0 => format!("…{}", &txn[cut..]),
            _ => txn,
        };
        let (amount, amount_invalid) = match &entry.amount {
            Some(Amount::Money(money)) => (dollars(*money), false),
            Some(Amount::Unparsed(text)) => (text.clone(), true),
            None => (String::new(), false),
        };
        HistoryRow {
            when: utc(entry.at_ms),
            txn: entry.txn,
            txn_short,
            command: entry.words,
            symbol: entry.symbol.map(|s| s.to_string()).unwrap_or_default(),
            amount,
            amount_invalid,
            filled: entry
                .fill
                .map(|f| format!("{} at {}", f.shares, dollars(f.price)))
                .unwrap_or_default(),
            cash_after: entry.cash_after.map(dollars).unwrap_or_default(),
            ok: entry.refusal.is_none(),
            outcome: entry.outcome(),
            message: entry
                .refusal
                .as_ref()
                .map(|r| r.message.clone())
                .unwrap_or_default(),
        }
    }
}

/// A notification as listed.
pub struct NoteRow {
    pub id: i64,
    pub when: String,
    pub title: &'static str,
    pub message: String,
    pub read: bool,
}

impl NoteRow {
    pub fn of(note: &Notification) -> NoteRow {
        NoteRow {
            id: note.id,
            when: utc(note.created_ms),
            title: match note.kind {
                NotificationKind::TriggerExecuted => "Trigger executed",
                NotificationKind::TriggerUnfilled => "Trigger could not buy",
                NotificationKind::OrderExpired => "Order expired",
            },
            message: note.message.clone(),
            read: note.read,
        }
    }
}

/// The longest a page waits for a price before showing a holding without
/// its value: a slow quote service must not hold the page up.
const PRICE_WAIT: Duration = Duration::from_secs(2);

/// The current prices of `symbols` for `user`, fetched together (through
/// the shared quote cache; a fetch is recorded, as it costs money). A price
/// that cannot be had in time is left out.
pub async fn prices(state: &AppState, user: &UserId, symbols: &[Symbol]) -> HashMap<Symbol, Money> {
    let fetches = symbols.iter().map(|&symbol| async move {
        let quote = state.trading.quote(symbol, user, Some(user.clone()));
        match tokio::time::timeout(PRICE_WAIT, quote).await {
            Ok(Ok(quote)) => Some((symbol, quote.price)),
            Ok(Err(error)) => {
                tracing::debug!(%error, %symbol, "no price for a holding");
                None
            }
            Err(_) => None,
        }
    });
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The rows of a valuation's holdings.
pub fn holdings(valuation: &Valuation) -> Vec<HoldingRow> {
    valuation
        .holdings
        .iter()
        .map(|holding| HoldingRow {
            symbol: holding.symbol.to_string(),
            shares: holding.shares,
            reserved_shares: holding.reserved_shares,
            average_price: holding.average_price.map(dollars),
            price: holding.price.map(dollars),
            value: holding.market_value.map(dollars),
            gain: holding.unrealized_gain.map(Gain::of),
        })
        .collect()
}

/// A gain or a loss, as shown: signed, and classed for its colour.
pub struct Gain {
    pub text: String,
    /// `gain`, `loss` or `flat`.
    pub class: &'static str,
}

impl Gain {
    pub fn of(money: Money) -> Gain {
        let class = match money.cents() {
            c if c > 0 => "gain",
            c if c < 0 => "loss",
            _ => "flat",
        };
        let sign = if money.is_positive() { "+" } else { "" };
        Gain {
            text: format!("{sign}{}", dollars(money)),
            class,
        }
    }
}
