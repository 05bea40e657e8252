//! One trader's state and the rules that change it.
//!
//! Reserved amounts are never stored: reserved cash is the sum of pending
//! buys and buy-trigger reserves, reserved shares the sum of pending sells
//! and sell-trigger reserves. Storing them would give two places to keep in
//! step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::cost::Costs;
use crate::event::{Event, EventKind, FundsAction};
use crate::money::Money;
use crate::rejection::{RejectCode, Rejection};
use crate::reply::{Added, Empty, Quote, Reply};
use crate::symbol::Symbol;

/// How long a BUY or SELL waits for its commit.
pub const PENDING_TTL_MS: i64 = 60_000;

/// The most money one account may hold, reserves included: 10^15 dollars.
/// Far below `i64::MAX` cents, so returning a reserve or crediting a sale can
/// never overflow.
pub const MAX_BALANCE: Money = Money::from_cents(100_000_000_000_000_000);

/// A trader's balances, orders and triggers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable cash.
    pub(crate) cash: Money,
    /// Spendable shares by symbol; a symbol with none is absent.
    pub(crate) holdings: BTreeMap<Symbol, i64>,
    /// Oldest first; the newest is popped first.
    pub(crate) pending_buys: Vec<PendingOrder>,
    pub(crate) pending_sells: Vec<PendingOrder>,
    pub(crate) buy_triggers: BTreeMap<Symbol, BuyTrigger>,
    pub(crate) sell_triggers: BTreeMap<Symbol, SellTrigger>,
    /// What last expired on each side, so that a commit or cancel that
    /// finds nothing pending can say the order expired rather than that
    /// there never was one. Appended: accounts stored before it
    /// decode with nothing expired (`store::codec`).
    pub(crate) last_expired: LastExpired,
    /// What the shares owned cost, and the gain sales realized (`cost.rs`).
    /// Appended: the store decodes accounts written before it with
    /// no costs.
    pub(crate) costs: Costs,
}

/// The newest order of each side that expired since the trader last
/// placed one on that side (a new BUY forgets the expired buy: a later
/// "nothing pending" is then about the new order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExpired {
    pub buy: Option<ExpiredOrder>,
    pub sell: Option<ExpiredOrder>,
}

/// A pending order that reached 60 s without a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredOrder {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    /// The moment it expired: 60 s after it was placed.
    pub expired_at_ms: i64,
}

impl ExpiredOrder {
    fn of(order: &PendingOrder) -> ExpiredOrder {
        ExpiredOrder {
            symbol: order.symbol,
            shares: order.shares,
            price: order.price,
            expired_at_ms: order.expires_at_ms(),
        }
    }
}

/// A BUY waiting for COMMIT_BUY (it holds `shares × price` of cash), or a
/// SELL waiting for COMMIT_SELL (it holds `shares`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOrder {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    pub created_ms: i64,
    pub txn: i64,
}

/// SET_BUY_AMOUNT reserves cash; SET_BUY_TRIGGER arms it with a price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyTrigger {
    pub reserved: Money,
    pub trigger_price: Option<Money>,
    /// The command that last set it; executions are recorded against it.
    pub txn: i64,
}

/// SET_SELL_AMOUNT records an amount; SET_SELL_TRIGGER reserves shares and
/// arms it with a price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellTrigger {
    pub amount: Money,
    pub trigger_price: Option<Money>,
    pub reserved_shares: i64,
    pub txn: i64,
}

impl PendingOrder {
    /// An order placed now by the command `ctx` runs.
    pub(crate) fn new(symbol: Symbol, shares: i64, price: Money, ctx: &Context) -> PendingOrder {
        PendingOrder {
            symbol,
            shares,
            price,
            created_ms: ctx.now_ms,
            txn: ctx.txn,
        }
    }

    /// What the order is worth at its price: the cash a buy holds, what a
    /// sell brings.
    pub fn value(&self) -> Money {
        self.price
            .times(self.shares)
            .expect("bounded when reserved")
    }

    /// When it runs out.
    pub fn expires_at_ms(&self) -> i64 {
        self.created_ms.saturating_add(PENDING_TTL_MS)
    }

    fn is_expired(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.created_ms) >= PENDING_TTL_MS
    }
}

/// Takes the orders of `stack` that have expired by `now_ms`, oldest first.
fn take_expired(stack: &mut Vec<PendingOrder>, now_ms: i64) -> Vec<PendingOrder> {
    if !stack.iter().any(|order| order.is_expired(now_ms)) {
        return Vec::new();
    }
    let (expired, live) = std::mem::take(stack)
        .into_iter()
        .partition(|order| order.is_expired(now_ms));
    *stack = live;
    expired
}

/// Which side of the book a trigger is on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TriggerSide {
    Buy,
    Sell,
}

/// An armed trigger, as an index of triggers by symbol needs it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArmedTriggerKey {
    pub symbol: Symbol,
    pub side: TriggerSide,
    pub trigger_price: Money,
}

impl ArmedTriggerKey {
    /// Whether a known price fires this trigger.
    pub fn fires_at(&self, price: Money) -> bool {
        match self.side {
            TriggerSide::Buy => price <= self.trigger_price,
            TriggerSide::Sell => price >= self.trigger_price,
        }
    }
}

/// What the engine needs besides the command: the time, the transaction
/// number to record effects against, and the current price when the command
/// needs one.
#[derive(Copy, Clone, Debug)]
pub struct Context {
    pub now_ms: i64,
    pub txn: i64,
    pub price: Option<Money>,
}

/// Runs one command for a user who may not exist yet. A user comes into
/// being with their first successful ADD; every other command for an unknown
/// user is refused.
///
/// On refusal the account is exactly as it was, except that pending orders
/// that had already expired are released (an expiry is a fact of time, not
/// an effect of the refused command); `events` then holds only those.
pub fn execute(
    account: &mut Option<Account>,
    command: &Command,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> Result<Reply, Rejection> {
    match account {
        Some(existing) => existing.execute(command, ctx, events),
        None => {
            let Command::Add { .. } = command else {
                return Err(Rejection::new(
                    RejectCode::UnknownUser,
                    "This user does not exist yet: a user comes into being with their first ADD.",
                ));
            };
            let mut fresh = Account::default();
            let reply = fresh.execute(command, ctx, events)?;
            *account = Some(fresh);
            Ok(reply)
        }
    }
}

impl Account {
    pub fn cash(&self) -> Money {
        self.cash
    }

    /// Cash held by pending buys and buy triggers.
    pub fn reserved_cash(&self) -> Money {
        let pending = self.pending_buys.iter().map(PendingOrder::value);
        let triggers = self.buy_triggers.values().map(|t| t.reserved);
        pending
            .chain(triggers)
            .try_fold(Money::ZERO, Money::checked_add)
            .expect("reserves are bounded by deposits")
    }

    /// Spendable shares of `symbol`.
    pub fn shares(&self, symbol: Symbol) -> i64 {
        self.holdings.get(&symbol).copied().unwrap_or(0)
    }

    /// Shares of `symbol` held by pending sells and its sell trigger.
    pub fn reserved_shares(&self, symbol: Symbol) -> i64 {
        let pending: i64 = self
            .pending_sells
            .iter()
            .filter(|s| s.symbol == symbol)
            .map(|s| s.shares)
            .sum();
        pending
            + self
                .sell_triggers
                .get(&symbol)
                .map_or(0, |t| t.reserved_shares)
    }

    /// Every symbol the account has any shares of, spendable or reserved.
    pub fn symbols_held(&self) -> impl Iterator<Item = Symbol> + '_ {
        let mut symbols: Vec<Symbol> = self
            .holdings
            .keys()
            .copied()
            .chain(self.pending_sells.iter().map(|s| s.symbol))
            .chain(
                self.sell_triggers
                    .iter()
                    .filter(|(_, t)| t.reserved_shares > 0)
                    .map(|(s, _)| *s),
            )
            .collect();
        symbols.sort();
        symbols.dedup();
        symbols.into_iter()
    }

    pub fn pending_buys(&self) -> &[PendingOrder] {
        &self.pending_buys
    }

    pub fn pending_sells(&self) -> &[PendingOrder] {
        &self.pending_sells
    }

    pub fn buy_triggers(&self) -> &BTreeMap<Symbol, BuyTrigger> {
        &self.buy_triggers
    }

    pub fn sell_triggers(&self) -> &BTreeMap<Symbol, SellTrigger> {
        &self.sell_triggers
    }

    /// The armed triggers, for an index that finds them by symbol.
    pub fn armed_triggers(&self) -> Vec<ArmedTriggerKey> {
        let buys = self.buy_triggers.iter().filter_map(|(symbol, t)| {
            t.trigger_price.map(|trigger_price| ArmedTriggerKey {
                symbol: *symbol,
                side: TriggerSide::Buy,
                trigger_price,
            })
        });
        let sells = self.sell_triggers.iter().filter_map(|(symbol, t)| {
            t.trigger_price.map(|trigger_price| ArmedTriggerKey {
                symbol: *symbol,
                side: TriggerSide::Sell,
                trigger_price,
            })
        });
        buys.chain(sells).collect()
    }

    /// Runs one command on an existing account. See [`execute`].
    pub fn execute(
        &mut self,
        command: &Command,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        self.expire(ctx.now_ms, events);
        let price = || {
            ctx.price
                .expect("the caller supplies a price for commands that need one")
        };
        match *command {
            Command::Add { amount } => self.add(amount, ctx, events),
            Command::Quote { symbol } => Ok(Reply::Quote(Quote {
                symbol,
                price: price(),
            })),
            Command::Buy { symbol, amount } => self.buy(symbol, amount, price(), ctx, events),
            Command::CommitBuy => self.commit_buy(),
            Command::CancelBuy => self.cancel_buy(ctx, events),
            Command::Sell { symbol, amount } => self.sell(symbol, amount, price(), ctx),
            Command::CommitSell => self.commit_sell(ctx, events),
            Command::CancelSell => self.cancel_sell(),
            Command::SetBuyAmount { symbol, amount } => {
                self.set_buy_amount(symbol, amount, ctx, events)
            }
            Command::SetBuyTrigger {
                symbol,
                price: trigger,
            } => self.set_buy_trigger(symbol, trigger, price(), ctx, events),
            Command::CancelSetBuy { symbol } => self.cancel_set_buy(symbol, ctx, events),
            Command::SetSellAmount { symbol, amount } => self.set_sell_amount(symbol, amount, ctx),
            Command::SetSellTrigger {
                symbol,
                price: trigger,
            } => self.set_sell_trigger(symbol, trigger, price(), ctx, events),
            Command::CancelSetSell { symbol } => self.cancel_set_sell(symbol),
            Command::DumpLog => Ok(Reply::DumpLog(Empty {})),
            Command::DisplaySummary => Ok(Reply::Summary(Box::new(self.summary(ctx.now_ms)))),
        }
    }

    /// A new price for `symbol` became known: fire every trigger it
    /// satisfies. Returns whether anything changed.
    pub fn on_price(
        &mut self,
        symbol: Symbol,
        price: Money,
        now_ms: i64,
        events: &mut Vec<Event>,
    ) -> bool {
        let before = events.len();
        self.expire(now_ms, events);
        self.check_buy_trigger(symbol, price, events);
        self.check_sell_trigger(symbol, price, events);
        events.len() > before
    }

    /// What last expired on each side (see [`LastExpired`]).
    pub fn last_expired(&self) -> &LastExpired {
        &self.last_expired
    }

    /// Releases every pending order that is 60 s old or older, and
    /// remembers the newest of each side (both the lazy expiry at a
    /// command and the on-time expiry come through here).
    pub fn expire(&mut self, now_ms: i64, events: &mut Vec<Event>) {
        for buy in take_expired(&mut self.pending_buys, now_ms) {
            self.last_expired.buy = Some(ExpiredOrder::of(&buy));
            let refund = buy.value();
            self.credit(refund, buy.txn, events);
            events.push(Event {
                txn: buy.txn,
                kind: EventKind::BuyExpired {
                    symbol: buy.symbol,
                    shares: buy.shares,
                    price: buy.price,
                    refund,
                },
            });
        }
        for sell in take_expired(&mut self.pending_sells, now_ms) {
            self.last_expired.sell = Some(ExpiredOrder::of(&sell));
            self.add_shares(sell.symbol, sell.shares);
            events.push(Event {
                txn: sell.txn,
                kind: EventKind::SellExpired {
                    symbol: sell.symbol,
                    shares: sell.shares,
                    price: sell.price,
                },
            });
        }
    }

    fn add(
        &mut self,
        amount: Money,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let total = self
            .cash
            .checked_add(self.reserved_cash())
            .and_then(|t| t.checked_add(amount));
        if total.is_none_or(|t| t > MAX_BALANCE) {
            return Err(Rejection::new(
                RejectCode::BalanceLimit,
                format!(
                    "This deposit would take the account past the largest balance it may hold, {}.",
                    MAX_BALANCE.dollars()
                ),
            ));
        }
        self.credit(amount, ctx.txn, events);
        Ok(Reply::Added(Added { added: amount }))
    }

    // Cash moves only through these two, so every change is recorded.

    pub(crate) fn credit(&mut self, amount: Money, txn: i64, events: &mut Vec<Event>) {
        if amount == Money::ZERO {
            return;
        }
        // Credits return money that was deposited, or sale proceeds bounded
        // by amount × price; the ADD check keeps the total in range.
        self.cash = self.cash.checked_add(amount).expect("balance in range");
        events.push(Event {
            txn,
            kind: EventKind::Funds {
                action: FundsAction::Add,
                amount,
            },
        });
    }

    pub(crate) fn debit(&mut self, amount: Money, txn: i64, events: &mut Vec<Event>) {
        if amount == Money::ZERO {
            return;
        }
        debug_assert!(
            amount <= self.cash,
            "debits are checked against the balance first"
        );
        self.cash = self.cash.checked_sub(amount).expect("balance in range");
        events.push(Event {
            txn,
            kind: EventKind::Funds {
                action: FundsAction::Remove,
                amount,
            },
        });
    }

    pub(crate) fn add_shares(&mut self, symbol: Symbol, shares: i64) {
        if shares != 0 {
            *self.holdings.entry(symbol).or_insert(0) += shares;
        }
    }

    pub(crate) fn remove_shares(&mut self, symbol: Symbol, shares: i64) {
        let held = self
            .holdings
            .get_mut(&symbol)
            .expect("checked before removing");
        *held -= shares;
        debug_assert!(*held >= 0);
        if *held == 0 {
            self.holdings.remove(&symbol);
        }
    }
}
