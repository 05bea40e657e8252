//! What a state change emits: the audit log's account transactions and
//! system events, and the notifications a trader sees.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::symbol::Symbol;

/// One effect worth recording, attributed to the transaction number of the
/// command that caused it (for an expiry or a trigger, the command that
/// created the order or armed the trigger).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub txn: i64,
    pub kind: EventKind,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FundsAction {
    Add,
    Remove,
}

impl FundsAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            FundsAction::Add => "add",
            FundsAction::Remove => "remove",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The spendable cash balance changed.
    Funds { action: FundsAction, amount: Money },
    /// A pending buy passed 60 s; its reserved cash came back.
    BuyExpired {
        symbol: Symbol,
        shares: i64,
        price: Money,
        refund: Money,
    },
    /// A pending sell passed 60 s; its reserved shares came back.
    SellExpired {
        symbol: Symbol,
        shares: i64,
        price: Money,
    },
    /// A buy trigger fired and bought `shares` at `price`.
    BuyTriggerExecuted {
        symbol: Symbol,
        shares: i64,
        price: Money,
        cost: Money,
    },
    /// A buy trigger fired but its reserve could not buy one share at
    /// `price`; the trigger is gone and the reserve came back.
    BuyTriggerUnfilled {
        symbol: Symbol,
        price: Money,
        refund: Money,
    },
    /// A sell trigger fired and sold `shares` at `price`.
    SellTriggerExecuted {
        symbol: Symbol,
        shares: i64,
        price: Money,
        proceeds: Money,
    },
}
