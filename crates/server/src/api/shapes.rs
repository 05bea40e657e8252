//! The JSON shapes the API answers with, beyond the engine's own types.

use engine::{Money, Reply, Summary};
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

/// A user's summary: DISPLAY_SUMMARY's result and `GET /api/v1/users/{user}`.
#[derive(Serialize)]
pub struct SummaryView<'a> {
    pub user: &'a str,
    #[serde(flatten)]
    pub summary: &'a Summary,
    /// Latest first.
    pub history: Vec<HistoryItem>,
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
