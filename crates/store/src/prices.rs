//! The price history: every price the system fetched from the quote
//! service, per symbol, with the time it was recorded. Written in the same
//! transaction as the log row that records the fetch (a command's
//! `quoteServer` entry, or a fetch outside any command), so the history
//! and the audit log never disagree.
//!
//! Retention: the newest [`PRICE_HISTORY_LIMIT`] points of each symbol. A
//! batch that adds points drops the oldest beyond that, in the same
//! transaction. On PostgreSQL, batches of several instances committing at
//! the same moment each trim what they saw, so a symbol may hold a few
//! more for a while; its next fetch trims it back.

use std::collections::HashMap;

use engine::{Money, Symbol};
use serde::Serialize;

use crate::batch::Applied;
use crate::record::HistoryItem;

/// How many points of each symbol are kept.
pub const PRICE_HISTORY_LIMIT: usize = 1_000;

/// One fetched price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PricePoint {
    /// When it was recorded (Unix ms): the time of its log row.
    #[serde(rename = "at")]
    pub at_ms: i64,
    pub price: Money,
}

/// Counts a batch that added price points in its instance's row of
/// `price_generations` (`$1` is the instance; SQLite runs this, and
/// PostgreSQL's one write statement per batch holds the same as a CTE).
/// The rows only grow, and every such batch grows one in its
/// own transaction, so their sum read in two snapshots is the same exactly
/// when the price history gained no point in between: a kept summary whose
/// generation still stands needs no look at its prices. One row per
/// instance, so that the batches of different instances never wait for
/// each other's lock on it.
pub(crate) const COUNT_PRICE_GENERATION: &str =
    "INSERT INTO price_generations (server, n) VALUES ($1, 1)
     ON CONFLICT (server) DO UPDATE SET n = price_generations.n + 1";

/// What a kept summary is checked against ([`crate::Reads::summary_stamp`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryStamp {
    /// The account's version.
    pub version: i64,
    /// The price generation: the sum over `price_generations`.
    pub generation: i64,
    /// The newest point of each symbol asked for that has one; `None` when
    /// the generation was the one the caller knew, so nothing was read.
    pub prices: Option<HashMap<Symbol, PricePoint>>,
}

/// What a summary shows beside the account itself
/// ([`crate::Reads::summary_extras`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryExtras {
    /// The newest point of each symbol asked for that has one.
    pub prices: HashMap<Symbol, PricePoint>,
    /// The user's latest history lines, newest first.
    pub history: Vec<HistoryItem>,
}

/// A point as written: its symbol and the `seq` of the log row that
/// recorded the fetch (which orders points of one instant).
pub(crate) struct NewPricePoint {
    pub symbol: Symbol,
    pub seq: i64,
    pub point: PricePoint,
}

/// The prices the rows of a batch fetched, in row order.
pub(crate) fn fetched_points(applied: &Applied) -> Vec<NewPricePoint> {
    applied
        .rows
        .iter()
        .filter_map(|new| {
            let fetch = new.row.record.fetch()?;
            Some(NewPricePoint {
                symbol: fetch.symbol,
                seq: new.row.seq,
                point: PricePoint {
                    at_ms: new.row.ts_ms,
                    price: fetch.price,
                },
            })
        })
        .collect()
}
