//! The JSON shapes the API answers with, beyond the engine's own types.

use engine::{
    BuyTriggerView, HoldingValue, Money, PendingView, Reply, SellTriggerView, Summary, UserId,
    Valuation,
};
use serde::Serialize;
use store::HistoryItem;

/// The answer to an accepted command.
#[derive(Serialize)]
pub struct CommandResponse<'a, R: Serialize> {
    pub transaction_num: i64,
    pub command: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    pub result: R,
    /// The user's balances after the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cash: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_cash: Option<Money>,
}

/// A user's summary: DISPLAY_SUMMARY's result and `GET /api/v1/users/{user}`,
/// with its money view (SPEC 4b; `service::money`).
#[derive(Serialize)]
pub struct SummaryView<'a> {
    pub user: &'a str,
    pub cash: Money,
    pub reserved_cash: Money,
    /// `null` when a holding has no known price.
    pub value: Option<Money>,
    pub realized_gain: Money,
    pub holdings: &'a [HoldingValue],
    pub pending_buys: &'a [PendingView],
    pub pending_sells: &'a [PendingView],
    pub buy_triggers: &'a [BuyTriggerView],
    pub sell_triggers: &'a [SellTriggerView],
    /// Latest first.
    pub history: Vec<HistoryItem>,
}

impl<'a> SummaryView<'a> {
    pub fn new(
        user: &'a UserId,
        summary: &'a Summary,
        valuation: &'a Valuation,
        history: Vec<HistoryItem>,
    ) -> SummaryView<'a> {
        SummaryView {
            user: user.as_str(),
            cash: summary.cash,
            reserved_cash: summary.reserved_cash,
            value: valuation.value,
            realized_gain: valuation.realized_gain,
            holdings: &valuation.holdings,
            pending_buys: &summary.pending_buys,
            pending_sells: &summary.pending_sells,
            buy_triggers: &summary.buy_triggers,
            sell_triggers: &summary.sell_triggers,
            history,
        }
    }
}

/// A reply, or the summary view standing in for DISPLAY_SUMMARY's.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ResultView<'a> {
    Reply(&'a Reply),
    Summary(SummaryView<'a>),
}

#[derive(Serialize)]
pub struct QuoteView {
    pub symbol: engine::Symbol,
    pub price: Money,
    pub fetched_at_ms: i64,
    /// Whether the price came from the cache rather than this request.
    pub cached: bool,
}
