//! Buy and sell triggers: an amount set aside, armed with a price, fired
//! when a known price reaches it.

use crate::account::{Account, BuyTrigger, Context, SellTrigger};
use crate::event::{Event, EventKind};
use crate::money::Money;
use crate::rejection::{RejectCode, Rejection};
use crate::reply::{ArmedTrigger, Execution, Reply, TriggerAmount, TriggerCancelled};
use crate::symbol::Symbol;

impl Account {
    pub(crate) fn set_buy_amount(
        &mut self,
        symbol: Symbol,
        amount: Money,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let current = self
            .buy_triggers
            .get(&symbol)
            .map_or(Money::ZERO, |t| t.reserved);
        let available = self
            .cash
            .checked_add(current)
            .expect("reserve came from cash");
        if available < amount {
            return Err(Rejection::new(
                RejectCode::InsufficientFunds,
                format!(
                    "Setting {} aside for buying {symbol} needs more than the {} available.",
                    amount.dollars(),
                    available.dollars()
                ),
            ));
        }
        // Only the difference moves, so an unchanged amount records nothing.
        if amount > current {
            self.debit(
                amount.checked_sub(current).expect("ordered"),
                ctx.txn,
                events,
            );
        } else {
            self.credit(
                current.checked_sub(amount).expect("ordered"),
                ctx.txn,
                events,
            );
        }
        self.buy_triggers.insert(
            symbol,
            BuyTrigger {
                reserved: amount,
                trigger_price: None,
                txn: ctx.txn,
            },
        );
        Ok(Reply::TriggerAmount(TriggerAmount { symbol, amount }))
    }

    pub(crate) fn set_buy_trigger(
        &mut self,
        symbol: Symbol,
        trigger_price: Money,
        price: Money,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let trigger = self
            .buy_triggers
            .get_mut(&symbol)
            .ok_or_else(|| no_buy_amount(symbol))?;
        trigger.trigger_price = Some(trigger_price);
        trigger.txn = ctx.txn;
        let executed = self.check_buy_trigger(symbol, price, events);
        Ok(Reply::TriggerArmed(ArmedTrigger {
            symbol,
            trigger_price,
            reserved_shares: None,
            current_price: price,
            executed,
        }))
    }

    pub(crate) fn cancel_set_buy(
        &mut self,
        symbol: Symbol,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let trigger = self
            .buy_triggers
            .remove(&symbol)
            .ok_or_else(|| no_buy_amount(symbol))?;
        self.credit(trigger.reserved, ctx.txn, events);
        Ok(Reply::TriggerCancelled(TriggerCancelled {
            symbol,
            released_cash: trigger.reserved,
            released_shares: 0,
        }))
    }

    pub(crate) fn set_sell_amount(
        &mut self,
        symbol: Symbol,
        amount: Money,
        ctx: &Context,
    ) -> Result<Reply, Rejection> {
        let released = self
            .sell_triggers
            .get(&symbol)
            .map_or(0, |t| t.reserved_shares);
        if self.shares(symbol) + released == 0 {
            return Err(Rejection::new(
                RejectCode::NoHoldings,
                format!("There are no shares of {symbol} to sell."),
            ));
        }
        self.add_shares(symbol, released);
        self.sell_triggers.insert(
            symbol,
            SellTrigger {
                amount,
                trigger_price: None,
                reserved_shares: 0,
                txn: ctx.txn,
            },
        );
        Ok(Reply::TriggerAmount(TriggerAmount { symbol, amount }))
    }

    pub(crate) fn set_sell_trigger(
        &mut self,
        symbol: Symbol,
        trigger_price: Money,
        price: Money,
        ctx: &Context,
        events: &mut Vec<Event>,
    ) -> Result<Reply, Rejection> {
        let trigger = self
            .sell_triggers
            .get(&symbol)
            .ok_or_else(|| no_sell_amount(symbol))?;
        let shares = trigger.amount.shares_at(trigger_price);
        if shares < 1 {
            return Err(Rejection::new(
                RejectCode::AmountTooSmall,
                format!(
                    "{} does not sell one share of {symbol} at {}.",
                    trigger.amount.dollars(),
                    trigger_price.dollars()
                ),
            ));
        }
        let available = self.shares(symbol) + trigger.reserved_shares;
        if available < shares {
            return Err(Rejection::new(
                RejectCode::InsufficientShares,
                format!(
                    "Selling {} of {symbol} at {} needs {shares} shares, but only {available} are available.",
                    trigger.amount.dollars(),
                    trigger_price.dollars()
                ),
            ));
        }
        let earlier = trigger.reserved_shares;
        self.add_shares(symbol, earlier);
        self.remove_shares(symbol, shares);
        let trigger = self
            .sell_triggers
            .get_mut(&symbol)
            .expect("looked up above");
        trigger.reserved_shares = shares;
        trigger.trigger_price = Some(trigger_price);
        trigger.txn = ctx.txn;
        let executed = self.check_sell_trigger(symbol, price, events);
        Ok(Reply::TriggerArmed(ArmedTrigger {
            symbol,
            trigger_price,
            reserved_shares: Some(shares),
            current_price: price,
            executed,
        }))
    }

    pub(crate) fn cancel_set_sell(&mut self, symbol: Symbol) -> Result<Reply, Rejection> {
        let trigger = self
            .sell_triggers
            .remove(&symbol)
            .ok_or_else(|| no_sell_amount(symbol))?;
        self.add_shares(symbol, trigger.reserved_shares);
        Ok(Reply::TriggerCancelled(TriggerCancelled {
            symbol,
            released_cash: Money::ZERO,
            released_shares: trigger.reserved_shares,
        }))
    }

    /// Fires the buy trigger on `symbol` if it is armed and `price` is at or
    /// below its trigger price. It buys floor(reserve / price) shares and
    /// returns the rest of the reserve; when the reserve cannot buy a single
    /// share, the whole reserve comes back. Either way the trigger is gone.
    pub(crate) fn check_buy_trigger(
        &mut self,
        symbol: Symbol,
        price: Money,
        events: &mut Vec<Event>,
    ) -> Option<Execution> {
        let fires = self
            .buy_triggers
            .get(&symbol)
            .and_then(|t| t.trigger_price)
            .is_some_and(|trigger_price| price <= trigger_price);
        if !fires {
            return None;
        }
        let trigger = self.buy_triggers.remove(&symbol).expect("checked above");
        let shares = trigger.reserved.shares_at(price);
        if shares < 1 {
            self.credit(trigger.reserved, trigger.txn, events);
            events.push(Event {
                txn: trigger.txn,
                kind: EventKind::BuyTriggerUnfilled {
                    symbol,
                    price,
                    refund: trigger.reserved,
                },
            });
            return None;
        }
        let cost = price.times(shares).expect("at most the reserve");
        self.add_shares(symbol, shares);
        self.record_purchase(symbol, cost);
        self.credit(
            trigger
                .reserved
                .checked_sub(cost)
                .expect("at most the reserve"),
            trigger.txn,
            events,
        );
        events.push(Event {
            txn: trigger.txn,
            kind: EventKind::BuyTriggerExecuted {
                symbol,
                shares,
                price,
                cost,
            },
        });
        Some(Execution {
            shares,
            price,
            amount: cost,
        })
    }

    /// Fires the sell trigger on `symbol` if it is armed and `price` is at
    /// or above its trigger price: its reserved shares are sold at `price`.
    pub(crate) fn check_sell_trigger(
        &mut self,
        symbol: Symbol,
        price: Money,
        events: &mut Vec<Event>,
    ) -> Option<Execution> {
        let trigger = self.sell_triggers.get(&symbol)?;
        let fires = trigger
            .trigger_price
            .is_some_and(|trigger_price| price >= trigger_price);
        let proceeds = price.times(trigger.reserved_shares);
        // A sale too large for the balance waits armed rather than overflow.
        let proceeds = proceeds.filter(|p| self.cash.checked_add(*p).is_some())?;
        if !fires {
            return None;
        }
        let trigger = self.sell_triggers.remove(&symbol).expect("checked above");
        self.credit(proceeds, trigger.txn, events);
        self.record_sale(symbol, trigger.reserved_shares, proceeds);
        events.push(Event {
            txn: trigger.txn,
            kind: EventKind::SellTriggerExecuted {
                symbol,
                shares: trigger.reserved_shares,
                price,
                proceeds,
            },
        });
        Some(Execution {
            shares: trigger.reserved_shares,
            price,
            amount: proceeds,
        })
    }
}

fn no_buy_amount(symbol: Symbol) -> Rejection {
    Rejection::new(
        RejectCode::NoBuyAmount,
        format!("There is no buy amount set for {symbol}: use SET_BUY_AMOUNT first."),
    )
}

fn no_sell_amount(symbol: Symbol) -> Rejection {
    Rejection::new(
        RejectCode::NoSellAmount,
        format!("There is no sell amount set for {symbol}: use SET_SELL_AMOUNT first."),
    )
}
