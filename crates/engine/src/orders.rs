//! BUY and SELL, and their commits and cancels: two last-in-first-out
//! stacks of orders that wait 60 s for a commit.

use crate::account::{Account, Context, ExpiredOrder, PendingOrder};
use crate::clock::utc;
use crate::event::Event;
use crate::money::Money;
use crate::rejection::{RejectCode, Rejection};
use crate::reply::{OrderPlaced, Reply, SettledOrder};
use crate::symbol::Symbol;

/// The whole shares `amount` buys at `price`, or `amount_too_small`.
fn whole_shares(amount: Money, price: Money, what: &str) -> Result<i64, Rejection> {
    let shares = amount.shares_at(price);
    if shares < 1 {
        return Err(Rejection::new(
            RejectCode::AmountTooSmall,
            format!(
                "{} does not {what} one share at {}.",
                amount.dollars(),
                price.dollars()
            ),
        ));
    }
    Ok(shares)
}

impl PendingOrder {
    /// The order as placed: what BUY and SELL answer.
    fn placed(&self) -> Reply {
        Reply::Pending(OrderPlaced {
            symbol: self.symbol,
            shares: self.shares,
            price: self.price,
            amount: self.value(),
            expires_at_ms: self.expires_at_ms(),
        })
    }

    /// The order as committed or cancelled, for `amount`.
    fn settled(&self, amount: Money) -> Reply {
        Reply::Settled(SettledOrder {
            symbol: self.symbol,
            shares: self.shares,
            price: self.price,
            amount,
        })
    }
}

impl Account {
    /// When the next of the account's pending orders runs out (`None` with
    /// none pending): what the store keeps beside the account, so that the
    /// expiry task finds the accounts with orders due without reading all
    /// of them.
    pub fn next_expiry_ms(&self) -> Option<i64> {
        self.pending_buys
            .iter()
            .chain(&self.pending_sells)
            .map(PendingOrder::expires_at_ms)
            .min()
    }

    pub(crate) fn buy(
        &mut self,
        symbol: Symbol,
        amount: Money,
        price: Money,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let shares = whole_shares(amount, price, "buy")?;
        let cost = price.times(shares).expect("at most the amount");
        if self.cash < cost {
            return Err(Rejection::new(
                RejectCode::InsufficientFunds,
                format!(
                    "Buying {shares} {symbol} at {} needs {}, but only {} is available.",
                    price.dollars(),
                    cost.dollars(),
                    self.cash.dollars()
                ),
            ));
        }
        self.debit(cost, ctx.txn, events);
        let order = PendingOrder::new(symbol, shares, price, ctx);
        let placed = order.placed();
        self.pending_buys.push(order);
        self.last_expired.buy = None;
        Ok(placed)
    }

    pub(crate) fn commit_buy(&mut self) -> Result<Reply, Rejection> {
        let buy = self.pop_buy(Settle::Commit)?;
        self.add_shares(buy.symbol, buy.shares);
        self.record_purchase(buy.symbol, buy.value());
        Ok(buy.settled(buy.value()))
    }

    pub(crate) fn cancel_buy(
        &mut self,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let buy = self.pop_buy(Settle::Cancel)?;
        self.credit(buy.value(), ctx.txn, events);
        Ok(buy.settled(buy.value()))
    }

    pub(crate) fn sell(
        &mut self,
        symbol: Symbol,
        amount: Money,
        price: Money,
        ctx: &Context,
    ) -> Result<Reply, Rejection> {
        let held = self.shares(symbol);
        // The codes stay those of the rules (under one share, then too few
        // held), but a trader who holds none is told that first.
        let none_held = || format!("You hold no shares of {symbol} to sell.");
        let shares = whole_shares(amount, price, "sell").map_err(|refusal| {
            if held == 0 {
                Rejection::new(refusal.code, none_held())
            } else {
                refusal
            }
        })?;
        if held == 0 {
            return Err(Rejection::new(RejectCode::InsufficientShares, none_held()));
        }
        if held < shares {
            return Err(Rejection::new(
                RejectCode::InsufficientShares,
                format!(
                    "Selling {} of {symbol} at {} needs {shares} shares, but only {held} are available.",
                    amount.dollars(),
                    price.dollars()
                ),
            ));
        }
        self.remove_shares(symbol, shares);
        let order = PendingOrder::new(symbol, shares, price, ctx);
        let placed = order.placed();
        self.pending_sells.push(order);
        self.last_expired.sell = None;
        Ok(placed)
    }

    pub(crate) fn commit_sell(
        &mut self,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let sell = self.pop_sell(Settle::Commit)?;
        let proceeds = sell.value();
        if self.cash.checked_add(proceeds).is_none() {
            self.pending_sells.push(sell);
            return Err(Rejection::new(
                RejectCode::BalanceLimit,
                "This sale would take the balance past the largest amount the system holds.",
            ));
        }
        self.credit(proceeds, ctx.txn, events);
        self.record_sale(sell.symbol, sell.shares, proceeds);
        Ok(sell.settled(proceeds))
    }

    pub(crate) fn cancel_sell(&mut self) -> Result<Reply, Rejection> {
        let sell = self.pop_sell(Settle::Cancel)?;
        self.add_shares(sell.symbol, sell.shares);
        Ok(sell.settled(sell.value()))
    }

    /// The newest pending buy, or why there is none.
    fn pop_buy(&mut self, settle: Settle) -> Result<PendingOrder, Rejection> {
        self.pending_buys.pop().ok_or_else(|| {
            let message = match &self.last_expired.buy {
                Some(expired) => expired_message(expired, Side::Buy, settle),
                None => "There is no pending buy to act on: BUY first, then commit or cancel it \
                         within 60 seconds."
                    .to_owned(),
            };
            Rejection::new(RejectCode::NoPendingBuy, message)
        })
    }

    /// The newest pending sell, or why there is none.
    fn pop_sell(&mut self, settle: Settle) -> Result<PendingOrder, Rejection> {
        self.pending_sells.pop().ok_or_else(|| {
            let message = match &self.last_expired.sell {
                Some(expired) => expired_message(expired, Side::Sell, settle),
                None => "There is no pending sell to act on: SELL first, then commit or cancel \
                         it within 60 seconds."
                    .to_owned(),
            };
            Rejection::new(RejectCode::NoPendingSell, message)
        })
    }
}

#[derive(Copy, Clone)]
enum Side {
    Buy,
    Sell,
}

/// What the refused command meant to do with the order.
#[derive(Copy, Clone)]
enum Settle {
    Commit,
    Cancel,
}

/// Why a commit or cancel found nothing: the order it meant expired. The
/// code stays `no_pending_buy` / `no_pending_sell` (the contract's), the
/// sentence says what happened and when.
fn expired_message(order: &ExpiredOrder, side: Side, settle: Settle) -> String {
    let ExpiredOrder {
        symbol,
        shares,
        price,
        expired_at_ms,
    } = order;
    let (noun, verb, back) = match side {
        Side::Buy => ("buy", "bought", "its cash is back in your balance"),
        Side::Sell => ("sell", "sold", "its shares are back in your holdings"),
    };
    let what = format!(
        "Your {noun} of {shares} {symbol} at {} expired at {}",
        price.dollars(),
        utc(*expired_at_ms)
    );
    match settle {
        Settle::Commit => format!("{what}; nothing was {verb}, and {back}."),
        Settle::Cancel => format!("{what}, so there is nothing to cancel: {back}."),
    }
}
