//! The result of an accepted command, as the API returns it.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::summary::Summary;
use crate::symbol::Symbol;

/// What an accepted command did. Serialized without a tag: the response
/// envelope already names the command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// ADD.
    Added { added: Money },
    /// QUOTE.
    Quote { symbol: Symbol, price: Money },
    /// BUY and SELL: an order waiting for its commit.
    Pending(PendingOrder),
    /// COMMIT_BUY, CANCEL_BUY, COMMIT_SELL, CANCEL_SELL: the order that was
    /// popped, at the price it was reserved at.
    Settled(SettledOrder),
    /// SET_BUY_AMOUNT and SET_SELL_AMOUNT.
    TriggerAmount { symbol: Symbol, amount: Money },
    /// SET_BUY_TRIGGER and SET_SELL_TRIGGER: the trigger is armed, or it
    /// fired at once against the current price.
    TriggerArmed(ArmedTrigger),
    /// CANCEL_SET_BUY and CANCEL_SET_SELL.
    TriggerCancelled {
        symbol: Symbol,
        released_cash: Money,
        released_shares: i64,
    },
    /// DISPLAY_SUMMARY.
    Summary(Box<Summary>),
    /// DUMPLOG: the log itself is the answer.
    DumpLog {},
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOrder {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    /// shares × price: the cash reserved for a buy, the proceeds of a sell.
    pub amount: Money,
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledOrder {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedTrigger {
    pub symbol: Symbol,
    pub trigger_price: Money,
    /// The shares a sell trigger reserved; none for a buy trigger.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reserved_shares: Option<i64>,
    /// The price it was checked against when armed.
    pub current_price: Money,
    /// Set when the trigger fired at once.
    pub executed: Option<Execution>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub shares: i64,
    pub price: Money,
    pub amount: Money,
}
