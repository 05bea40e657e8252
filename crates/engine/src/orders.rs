//! BUY and SELL, and their commits and cancels: two last-in-first-out
//! stacks of orders that wait 60 s for a commit.

use crate::account::{Account, Context, PendingOrder};
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
        Ok(placed)
    }

    pub(crate) fn commit_buy(&mut self) -> Result<Reply, Rejection> {
        let buy = self.pending_buys.pop().ok_or_else(no_pending_buy)?;
        self.add_shares(buy.symbol, buy.shares);
        self.record_purchase(buy.symbol, buy.value());
        Ok(buy.settled(buy.value()))
    }

    pub(crate) fn cancel_buy(
        &mut self,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let buy = self.pending_buys.pop().ok_or_else(no_pending_buy)?;
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
        let shares = whole_shares(amount, price, "sell")?;
        let held = self.shares(symbol);
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
        Ok(placed)
    }

    pub(crate) fn commit_sell(
        &mut self,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let sell = self.pending_sells.pop().ok_or_else(no_pending_sell)?;
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
        let sell = self.pending_sells.pop().ok_or_else(no_pending_sell)?;
        self.add_shares(sell.symbol, sell.shares);
        Ok(sell.settled(sell.value()))
    }
}

fn no_pending_buy() -> Rejection {
    Rejection::new(
        RejectCode::NoPendingBuy,
        "There is no pending buy to act on: BUY first, then commit or cancel it within 60 seconds.",
    )
}

fn no_pending_sell() -> Rejection {
    Rejection::new(
        RejectCode::NoPendingSell,
        "There is no pending sell to act on: SELL first, then commit or cancel it within 60 seconds.",
    )
}
