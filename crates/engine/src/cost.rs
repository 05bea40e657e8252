//! What a trader paid for what they hold, by average cost, and the gain
//! their sales realized.
//!
//! The rule (SPEC 4b): a buy (COMMIT_BUY, or a buy trigger that executes)
//! adds its shares' cost to the holding's cost basis. A sale (COMMIT_SELL,
//! or a sell trigger that executes) of n of the N shares owned removes
//! n/N of the cost basis, rounded half up to the cent; what the sale
//! brought minus that removed cost is added to the realized gain. Shares
//! reserved for a pending sell or a sell trigger are still owned until
//! they are sold, so N counts them. Selling the last share removes the
//! whole remaining basis, so no stray cents stay behind.
//!
//! Only the cost basis per symbol and the realized gain are kept: the
//! share counts are the account's own (spendable + reserved), never a
//! second copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::money::Money;
use crate::symbol::Symbol;

/// An account's cost records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    /// What the shares owned of each symbol cost; a symbol with no shares
    /// owned is absent.
    basis: BTreeMap<Symbol, Money>,
    /// Proceeds of every sale minus the cost those sales removed; negative
    /// when the sales lost money.
    realized_gain: Money,
}

/// `numerator / denominator` rounded half up, for a non-negative
/// numerator and a positive denominator. In `i128`: a basis (at most the
/// largest balance, 10^17 cents) times a share count cannot overflow it.
fn divide_half_up(numerator: i128, denominator: i128) -> i64 {
    debug_assert!(numerator >= 0 && denominator > 0);
    let rounded = (2 * numerator + denominator) / (2 * denominator);
    i64::try_from(rounded).expect("a share of a bounded amount")
}

/// The part of `basis` that `sold` of `owned` shares carry: `basis × sold /
/// owned`, rounded half up to the cent.
pub fn cost_of_sale(basis: Money, sold: i64, owned: i64) -> Money {
    debug_assert!(0 < sold && sold <= owned);
    Money::from_cents(divide_half_up(
        i128::from(basis.cents()) * i128::from(sold),
        i128::from(owned),
    ))
}

/// `basis / shares` rounded half up to the cent; `None` without shares.
pub fn average_price(basis: Money, shares: i64) -> Option<Money> {
    (shares > 0).then(|| {
        Money::from_cents(divide_half_up(
            i128::from(basis.cents()),
            i128::from(shares),
        ))
    })
}

impl Costs {
    /// What the shares of `symbol` owned now cost.
    pub fn basis(&self, symbol: Symbol) -> Money {
        self.basis.get(&symbol).copied().unwrap_or(Money::ZERO)
    }

    pub fn realized_gain(&self) -> Money {
        self.realized_gain
    }

    /// Shares of `symbol` were bought for `cost`.
    fn bought(&mut self, symbol: Symbol, cost: Money) {
        let basis = self.basis.entry(symbol).or_insert(Money::ZERO);
        *basis = basis.checked_add(cost).expect("bounded by the balance");
    }

    /// `sold` of the `owned` shares of `symbol` were sold for `proceeds`.
    fn sold(&mut self, symbol: Symbol, sold: i64, owned: i64, proceeds: Money) {
        let basis = self.basis(symbol);
        let removed = cost_of_sale(basis, sold, owned);
        let left = basis.checked_sub(removed).expect("at most the basis");
        if sold == owned || left == Money::ZERO {
            self.basis.remove(&symbol);
        } else {
            self.basis.insert(symbol, left);
        }
        let gain = proceeds.checked_sub(removed).expect("bounded amounts");
        self.realized_gain = self
            .realized_gain
            .checked_add(gain)
            .expect("bounded by the balance");
    }
}

impl Account {
    pub fn costs(&self) -> &Costs {
        &self.costs
    }

    /// Every share of `symbol` the account owns: spendable, and reserved
    /// for pending sells and its sell trigger.
    pub fn owned_shares(&self, symbol: Symbol) -> i64 {
        self.shares(symbol) + self.reserved_shares(symbol)
    }

    /// Records a buy of `symbol` for `cost`, its shares already added.
    pub(crate) fn record_purchase(&mut self, symbol: Symbol, cost: Money) {
        self.costs.bought(symbol, cost);
    }

    /// Records a sale of `sold` shares of `symbol` for `proceeds`, made
    /// after the shares left the account (`owned` is counted with them).
    pub(crate) fn record_sale(&mut self, symbol: Symbol, sold: i64, proceeds: Money) {
        let owned = self.owned_shares(symbol) + sold;
        self.costs.sold(symbol, sold, owned, proceeds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_removes_its_share_of_the_basis_rounded_half_up() {
        // 1000 cents over 3 shares: one share carries 333.33… → 333.
        assert_eq!(cost_of_sale(Money::from_cents(1000), 1, 3).cents(), 333);
        // Two of three carry 666.66… → 667.
        assert_eq!(cost_of_sale(Money::from_cents(1000), 2, 3).cents(), 667);
        // Exactly half a cent rounds up: 5 cents over 2 shares, one sold.
        assert_eq!(cost_of_sale(Money::from_cents(5), 1, 2).cents(), 3);
        assert_eq!(cost_of_sale(Money::from_cents(5), 2, 2).cents(), 5);
    }

    #[test]
    fn the_average_price_rounds_half_up() {
        assert_eq!(
            average_price(Money::from_cents(1000), 3).unwrap().cents(),
            333
        );
        assert_eq!(
            average_price(Money::from_cents(1001), 2).unwrap().cents(),
            501
        );
        assert_eq!(average_price(Money::from_cents(1000), 0), None);
    }

    #[test]
    fn selling_everything_clears_the_basis_and_realizes_the_rest() {
        let symbol = Symbol::parse("ABC").unwrap();
        let mut costs = Costs::default();
        costs.bought(symbol, Money::from_cents(1000));
        costs.sold(symbol, 1, 3, Money::from_cents(300));
        assert_eq!(costs.basis(symbol).cents(), 667);
        assert_eq!(costs.realized_gain().cents(), -33);
        costs.sold(symbol, 2, 2, Money::from_cents(1000));
        assert_eq!(costs.basis(symbol), Money::ZERO);
        assert_eq!(costs.realized_gain().cents(), -33 + 333);
        assert_eq!(
            costs,
            Costs {
                basis: BTreeMap::new(),
                realized_gain: Money::from_cents(300)
            }
        );
    }
}
