//! The money view of a summary (SPEC 4b): the account valued at the
//! current prices.
//!
//! "The current price" of a symbol is the newest point of its price
//! history: the last price the system fetched, which is the price the
//! quote cache holds while that is fresh, and the best known after. It is
//! the same on every instance (the history is in the database, not in an
//! instance's cache), and reading it costs no quote. A symbol with no
//! recorded fetch (a holding from before the price history, or one whose
//! only fetch was lost with a write that failed while its cached price
//! served the retry) has no price: its market value and unrealized gain
//! are `null`, and so is the account's value.

use std::collections::HashMap;

use engine::{Account, Money, Summary, Symbol, Valuation};
use store::{PricePoint, Reader, Reads, StoreError};

/// The symbols a summary holds, spendable or reserved.
pub fn held_symbols(summary: &Summary) -> Vec<Symbol> {
    summary.holdings.iter().map(|h| h.symbol).collect()
}

/// The newest fetched price of each of `symbols` (none asked, no query).
pub async fn latest_prices(
    reader: &Reader,
    symbols: Vec<Symbol>,
) -> Result<HashMap<Symbol, PricePoint>, StoreError> {
    if symbols.is_empty() {
        return Ok(HashMap::new());
    }
    reader.latest_prices(symbols).await
}

/// `account`, as `summary` shows it, valued at `prices`.
pub fn value(
    account: &Account,
    summary: &Summary,
    prices: &HashMap<Symbol, PricePoint>,
) -> Valuation {
    account.valuation(summary, |symbol| prices.get(&symbol).map(|p| p.price))
}

/// Like [`value`], with prices a page has just had from the quote cache
/// taking the place of the history's (they are at least as new).
pub fn value_with(
    account: &Account,
    summary: &Summary,
    fresh: &HashMap<Symbol, Money>,
    prices: &HashMap<Symbol, PricePoint>,
) -> Valuation {
    account.valuation(summary, |symbol| {
        fresh
            .get(&symbol)
            .copied()
            .or_else(|| prices.get(&symbol).map(|p| p.price))
    })
}
