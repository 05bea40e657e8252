//! DISPLAY_SUMMARY: what a trader sees of their account at a moment.

use serde::{Deserialize, Serialize};

use crate::account::{Account, PendingOrder};
use crate::money::Money;
use crate::symbol::Symbol;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub cash: Money,
    pub reserved_cash: Money,
    pub holdings: Vec<Holding>,
    /// Newest first: the order a commit or cancel takes them in.
    pub pending_buys: Vec<PendingView>,
    pub pending_sells: Vec<PendingView>,
    pub buy_triggers: Vec<BuyTriggerView>,
    pub sell_triggers: Vec<SellTriggerView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub symbol: Symbol,
    pub shares: i64,
    pub reserved_shares: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingView {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    pub amount: Money,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyTriggerView {
    pub symbol: Symbol,
    pub amount: Money,
    pub trigger_price: Option<Money>,
    pub armed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellTriggerView {
    pub symbol: Symbol,
    pub amount: Money,
    pub trigger_price: Option<Money>,
    pub reserved_shares: i64,
    pub armed: bool,
}

impl Account {
    /// The account as it stands at `now_ms`. Orders that have expired by
    /// then are shown released even if no command has released them yet.
    pub fn summary(&self, now_ms: i64) -> Summary {
        let mut view = self.clone();
        view.expire(now_ms, &mut Vec::new());
        view.summary_as_is()
    }

    fn summary_as_is(&self) -> Summary {
        let holdings = self
            .symbols_held()
            .map(|symbol| Holding {
                symbol,
                shares: self.shares(symbol),
                reserved_shares: self.reserved_shares(symbol),
            })
            .collect();
        let pending = |order: &PendingOrder| PendingView {
            symbol: order.symbol,
            shares: order.shares,
            price: order.price,
            amount: order.value(),
            created_at_ms: order.created_ms,
            expires_at_ms: order.expires_at_ms(),
        };
        Summary {
            cash: self.cash,
            reserved_cash: self.reserved_cash(),
            holdings,
            pending_buys: self.pending_buys.iter().rev().map(pending).collect(),
            pending_sells: self.pending_sells.iter().rev().map(pending).collect(),
            buy_triggers: self
                .buy_triggers
                .iter()
                .map(|(symbol, t)| BuyTriggerView {
                    symbol: *symbol,
                    amount: t.reserved,
                    trigger_price: t.trigger_price,
                    armed: t.trigger_price.is_some(),
                })
                .collect(),
            sell_triggers: self
                .sell_triggers
                .iter()
                .map(|(symbol, t)| SellTriggerView {
                    symbol: *symbol,
                    amount: t.amount,
                    trigger_price: t.trigger_price,
                    reserved_shares: t.reserved_shares,
                    armed: t.trigger_price.is_some(),
                })
                .collect(),
        }
    }
}
