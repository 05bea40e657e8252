//! The money view of an account: what it is worth at given prices, what
//! its holdings cost, and what they gained or lost.
//!
//! Prices come from outside (the engine does no I/O): a holding without a
//! known price has no market value and no unrealized gain, and then the
//! account's value is unknown too, rather than shown short.

use serde::Serialize;

use crate::account::Account;
use crate::cost::average_price;
use crate::money::Money;
use crate::summary::Summary;
use crate::symbol::Symbol;

/// An account valued at a set of prices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Valuation {
    /// Cash + reserved cash + every holding (reserved shares included) at
    /// its price; `None` when a holding has no known price.
    pub value: Option<Money>,
    pub realized_gain: Money,
    pub holdings: Vec<HoldingValue>,
}

/// One holding, valued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldingValue {
    pub symbol: Symbol,
    /// Spendable shares.
    pub shares: i64,
    /// Shares held by pending sells and the sell trigger: still owned.
    pub reserved_shares: i64,
    /// Cost basis / shares owned, rounded half up.
    pub average_price: Option<Money>,
    pub cost_basis: Money,
    pub price: Option<Money>,
    /// Shares owned × price.
    pub market_value: Option<Money>,
    /// Market value − cost basis.
    pub unrealized_gain: Option<Money>,
}

impl Account {
    /// This account, as `summary` shows it, valued at `price_of` each
    /// symbol.
    pub fn valuation(
        &self,
        summary: &Summary,
        price_of: impl Fn(Symbol) -> Option<Money>,
    ) -> Valuation {
        let holdings: Vec<HoldingValue> = summary
            .holdings
            .iter()
            .map(|holding| {
                let owned = holding.shares + holding.reserved_shares;
                let cost_basis = self.costs.basis(holding.symbol);
                let price = price_of(holding.symbol);
                let market_value = price.and_then(|p| p.times(owned));
                HoldingValue {
                    symbol: holding.symbol,
                    shares: holding.shares,
                    reserved_shares: holding.reserved_shares,
                    average_price: average_price(cost_basis, owned),
                    cost_basis,
                    price,
                    market_value,
                    unrealized_gain: market_value.and_then(|v| v.checked_sub(cost_basis)),
                }
            })
            .collect();
        let mut value = summary.cash.checked_add(summary.reserved_cash);
        for holding in &holdings {
            value = value
                .zip(holding.market_value)
                .and_then(|(total, worth)| total.checked_add(worth));
        }
        Valuation {
            value,
            realized_gain: self.costs.realized_gain(),
            holdings,
        }
    }
}
