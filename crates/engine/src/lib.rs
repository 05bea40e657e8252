//! DayTrader's domain, free of I/O: exact money, the sixteen commands, a
//! trader's account with its pending orders and triggers, and the events each
//! change emits. Time and prices are passed in, so every outcome is a pure
//! function of its inputs and can be replayed.

mod account;
pub mod clock;
mod command;
mod cost;
mod event;
mod money;
mod orders;
mod rejection;
mod reply;
mod summary;
mod symbol;
pub mod transaction_num;
mod triggers;
mod user;
mod valuation;
pub mod whole_number;
pub mod wire;

pub use account::{
    Account, ArmedTriggerKey, BuyTrigger, Context, ExpiredOrder, LastExpired, MAX_BALANCE,
    PENDING_TTL_MS, PendingOrder, SellTrigger, TriggerSide, execute,
};
pub use command::{
    Arg, Command, CommandName, CommandRequest, MAX_AMOUNT_TEXT, MAX_FILENAME, Shape,
};
pub use cost::{Costs, average_price, cost_of_sale};
pub use event::{Event, EventKind, FundsAction};
pub use money::{AmountError, Decimal, Dollars, Money};
pub use rejection::{RejectCode, RejectKind, Rejection, UnknownRejectCode};
pub use reply::{
    Added, ArmedTrigger, Empty, Execution, OrderPlaced, Quote, Reply, SettledOrder, TriggerAmount,
    TriggerCancelled,
};
pub use summary::{BuyTriggerView, Holding, PendingView, SellTriggerView, Summary};
pub use symbol::{Symbol, SymbolError};
pub use user::{UserId, UserIdError};
pub use valuation::{HoldingValue, Valuation};
pub use wire::{CommandBody, ErrorBody};
