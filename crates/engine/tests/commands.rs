//! Every command's success and every refusal, through the public API.

use engine::{
    Account, Command, CommandName, CommandRequest, Context, Event, EventKind, FundsAction, Money,
    PENDING_TTL_MS, RejectCode, Reply, Symbol, execute,
};

fn m(text: &str) -> Money {
    Money::parse_decimal(text).unwrap()
}

fn s(text: &str) -> Symbol {
    Symbol::parse(text).unwrap()
}

fn add(amount: &str) -> Command {
    Command::Add { amount: m(amount) }
}

/// `name(symbol, "12.34")`: the command `variant` on `symbol` with that
/// amount (or price).
macro_rules! on_symbol {
    ($($name:ident => $variant:ident { $field:ident },)*) => {$(
        fn $name(symbol: Symbol, text: &str) -> Command {
            Command::$variant { symbol, $field: m(text) }
        }
    )*};
}

on_symbol! {
    buy => Buy { amount },
    sell => Sell { amount },
    set_buy_amount => SetBuyAmount { amount },
    set_buy_trigger => SetBuyTrigger { price },
    set_sell_amount => SetSellAmount { amount },
    set_sell_trigger => SetSellTrigger { price },
}

const T0: i64 = 1_700_000_000_000;

/// A small harness: one account, a clock, a transaction counter and a price.
struct Trader {
    account: Option<Account>,
    now: i64,
    txn: i64,
    price: Money,
    events: Vec<Event>,
}

impl Trader {
    fn new() -> Trader {
        Trader {
            account: None,
            now: T0,
            txn: 0,
            price: m("10.00"),
            events: Vec::new(),
        }
    }

    fn funded(cash: &str) -> Trader {
        let mut t = Trader::new();
        t.ok(Command::Add { amount: m(cash) });
        t
    }

    fn run(&mut self, command: Command) -> Result<Reply, engine::Rejection> {
        self.txn += 1;
        self.events.clear();
        let ctx = Context {
            now_ms: self.now,
            txn: self.txn,
            price: Some(self.price),
        };
        execute(&mut self.account, &command, &ctx, &mut self.events)
    }

    fn ok(&mut self, command: Command) -> Reply {
        self.run(command)
            .unwrap_or_else(|r| panic!("{command:?} refused: {r}"))
    }

    fn refused(&mut self, command: Command) -> RejectCode {
        let before = self.account.clone();
        let rejection = self.run(command).expect_err("should be refused");
        assert_eq!(self.account, before, "a refusal changes nothing");
        assert!(
            self.events.is_empty(),
            "a refusal records no effect: {:?}",
            self.events
        );
        assert!(!rejection.message.is_empty());
        rejection.code
    }

    fn acct(&self) -> &Account {
        self.account.as_ref().expect("account exists")
    }

    fn acct_mut(&mut self) -> &mut Account {
        self.account.as_mut().expect("account exists")
    }

    fn cash(&self) -> Money {
        self.acct().cash()
    }

    fn reserved(&self) -> Money {
        self.acct().reserved_cash()
    }

    fn funds(&self) -> Vec<(FundsAction, Money)> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Funds { action, amount } => Some((action, amount)),
                _ => None,
            })
            .collect()
    }

    /// Buys and commits `shares` of `symbol` at the current price.
    fn own(&mut self, symbol: &str, shares: i64) {
        let amount = self.price.times(shares).unwrap();
        self.ok(Command::Buy {
            symbol: s(symbol),
            amount,
        });
        self.ok(Command::CommitBuy);
    }
}

#[test]
fn add_creates_the_user_and_deposits() {
    let mut t = Trader::new();
    assert_eq!(
        t.ok(add("100.50")),
        Reply::Added(engine::Added { added: m("100.50") })
    );
    assert_eq!(t.cash(), m("100.50"));
    assert_eq!(t.funds(), [(FundsAction::Add, m("100.50"))]);
    t.ok(add("0.50"));
    assert_eq!(t.cash(), m("101.00"));
}

#[test]
fn add_refuses_a_bad_amount_before_the_user_exists() {
    let request =
        CommandRequest::new(CommandName::Add, Some("u1"), None, Some("-73280.58"), None).unwrap();
    assert_eq!(
        request.command().unwrap_err().code,
        RejectCode::InvalidAmount
    );
}

#[test]
fn add_refuses_past_the_balance_ceiling() {
    let mut t = Trader::funded("1000000000.00");
    let deposits_to_ceiling = engine::MAX_BALANCE.cents() / Money::MAX_AMOUNT.cents();
    for _ in 1..deposits_to_ceiling {
        t.ok(Command::Add {
            amount: Money::MAX_AMOUNT,
        });
    }
    assert_eq!(t.cash(), engine::MAX_BALANCE);
    assert_eq!(t.refused(add("0.01")), RejectCode::BalanceLimit);
}

#[test]
fn every_command_but_add_refuses_an_unknown_user() {
    let symbol = s("ABC");
    let amount = m("10.00");
    for command in [
        Command::Quote { symbol },
        Command::Buy { symbol, amount },
        Command::CommitBuy,
        Command::CancelBuy,
        Command::Sell { symbol, amount },
        Command::CommitSell,
        Command::CancelSell,
        Command::SetBuyAmount { symbol, amount },
        Command::SetBuyTrigger {
            symbol,
            price: amount,
        },
        Command::CancelSetBuy { symbol },
        Command::SetSellAmount { symbol, amount },
        Command::SetSellTrigger {
            symbol,
            price: amount,
        },
        Command::CancelSetSell { symbol },
        Command::DumpLog,
        Command::DisplaySummary,
    ] {
        let mut t = Trader::new();
        assert_eq!(t.refused(command), RejectCode::UnknownUser, "{command:?}");
        assert!(t.account.is_none());
    }
}

#[test]
fn quote_returns_the_price_given() {
    let mut t = Trader::funded("1.00");
    t.price = m("58.17");
    assert_eq!(
        t.ok(Command::Quote { symbol: s("abc") }),
        Reply::Quote(engine::Quote {
            symbol: s("ABC"),
            price: m("58.17")
        })
    );
}

#[test]
fn buy_reserves_whole_shares_at_the_price() {
    let mut t = Trader::funded("1000.00");
    t.price = m("58.17");
    let Reply::Pending(order) = t.ok(buy(s("ABC"), "276.83")) else {
        panic!("a pending order")
    };
    assert_eq!((order.shares, order.amount), (4, m("232.68")));
    assert_eq!(order.expires_at_ms, t.now + PENDING_TTL_MS);
    assert_eq!(t.cash(), m("767.32"));
    assert_eq!(t.reserved(), m("232.68"));
    assert_eq!(t.funds(), [(FundsAction::Remove, m("232.68"))]);
}

#[test]
fn buy_refusals() {
    let mut t = Trader::funded("100.00");
    t.price = m("58.17");
    let symbol = s("ABC");
    assert_eq!(t.refused(buy(symbol, "58.16")), RejectCode::AmountTooSmall);
    assert_eq!(
        t.refused(buy(symbol, "116.34")),
        RejectCode::InsufficientFunds
    );
    // Exactly affordable is fine.
    t.price = m("50.00");
    t.ok(buy(symbol, "100.00"));
    assert_eq!(t.cash(), Money::ZERO);
}

#[test]
fn commit_buy_takes_the_newest_pending_buy() {
    let mut t = Trader::funded("1000.00");
    t.ok(buy(s("A"), "20.00"));
    t.price = m("5.00");
    t.ok(buy(s("B"), "20.00"));
    let Reply::Settled(first) = t.ok(Command::CommitBuy) else {
        panic!()
    };
    assert_eq!(
        (first.symbol, first.shares, first.amount),
        (s("B"), 4, m("20.00"))
    );
    assert!(
        t.funds().is_empty(),
        "the reserved cash is spent, not moved"
    );
    assert_eq!(t.acct().shares(s("B")), 4);
    assert_eq!(t.reserved(), m("20.00"));
    let Reply::Settled(second) = t.ok(Command::CommitBuy) else {
        panic!()
    };
    assert_eq!((second.symbol, second.shares), (s("A"), 2));
    assert_eq!((t.cash(), t.reserved()), (m("960.00"), Money::ZERO));
    assert_eq!(t.refused(Command::CommitBuy), RejectCode::NoPendingBuy);
}

#[test]
fn cancel_buy_returns_the_reserve() {
    let mut t = Trader::funded("100.00");
    t.price = m("30.00");
    t.ok(buy(s("A"), "95.00"));
    t.ok(Command::CancelBuy);
    assert_eq!((t.cash(), t.reserved()), (m("100.00"), Money::ZERO));
    assert_eq!(t.funds(), [(FundsAction::Add, m("90.00"))]);
    assert_eq!(t.refused(Command::CancelBuy), RejectCode::NoPendingBuy);
}

#[test]
fn a_pending_buy_expires_after_sixty_seconds() {
    let mut t = Trader::funded("100.00");
    t.ok(buy(s("A"), "50.00"));
    t.now += PENDING_TTL_MS - 1;
    let summary = t.acct().summary(t.now);
    assert_eq!(summary.pending_buys.len(), 1, "59.999 s is still pending");
    t.now += 1;
    let summary = t.acct().summary(t.now);
    assert!(
        summary.pending_buys.is_empty(),
        "the summary never shows an expired order"
    );
    assert_eq!(
        (summary.cash, summary.reserved_cash),
        (m("100.00"), Money::ZERO)
    );

    let rejection = t.run(Command::CommitBuy).unwrap_err();
    assert_eq!(rejection.code, RejectCode::NoPendingBuy);
    assert_eq!(
        t.cash(),
        m("100.00"),
        "the expiry is applied even though the commit is refused"
    );
    assert!(matches!(
        t.events[1].kind,
        EventKind::BuyExpired { shares: 5, .. }
    ));
    assert_eq!(
        t.events[0].txn, 2,
        "recorded against the BUY that reserved it"
    );
}

#[test]
fn sell_reserves_shares_and_commit_sell_pays() {
    let mut t = Trader::funded("1000.00");
    t.own("ABC", 10);
    t.price = m("12.00");
    let Reply::Pending(order) = t.ok(sell(s("ABC"), "50.00")) else {
        panic!()
    };
    assert_eq!((order.shares, order.amount), (4, m("48.00")));
    assert_eq!(
        (
            t.acct().shares(s("ABC")),
            t.acct().reserved_shares(s("ABC"))
        ),
        (6, 4)
    );
    assert!(t.funds().is_empty(), "a pending sell moves no cash");
    t.price = m("1.00"); // the sale keeps the price it was reserved at
    t.ok(Command::CommitSell);
    assert_eq!(t.cash(), m("948.00"));
    assert_eq!(t.funds(), [(FundsAction::Add, m("48.00"))]);
    assert_eq!(t.acct().reserved_shares(s("ABC")), 0);
    assert_eq!(t.refused(Command::CommitSell), RejectCode::NoPendingSell);
}

#[test]
fn sell_refusals_and_cancel() {
    let mut t = Trader::funded("100.00");
    t.own("ABC", 3);
    let symbol = s("ABC");
    assert_eq!(t.refused(sell(symbol, "9.99")), RejectCode::AmountTooSmall);
    assert_eq!(
        t.refused(sell(symbol, "40.00")),
        RejectCode::InsufficientShares
    );
    assert_eq!(
        t.refused(sell(s("XYZ"), "10.00")),
        RejectCode::InsufficientShares
    );
    t.ok(sell(symbol, "30.00"));
    assert_eq!(t.acct().shares(symbol), 0);
    t.ok(Command::CancelSell);
    assert_eq!(t.acct().shares(symbol), 3);
    assert_eq!(t.refused(Command::CancelSell), RejectCode::NoPendingSell);
}

#[test]
fn a_pending_sell_expires_and_its_shares_come_back() {
    let mut t = Trader::funded("100.00");
    t.own("ABC", 3);
    t.ok(sell(s("ABC"), "30.00"));
    t.now += PENDING_TTL_MS;
    assert_eq!(
        t.run(Command::CancelSell).unwrap_err().code,
        RejectCode::NoPendingSell
    );
    assert_eq!(t.acct().shares(s("ABC")), 3);
}

#[test]
fn the_next_expiry_is_the_earliest_pending_order_s() {
    let mut t = Trader::funded("1000.00");
    t.own("ABC", 10);
    assert_eq!(t.acct().next_expiry_ms(), None, "nothing pending");
    let placed = t.now;
    t.ok(sell(s("ABC"), "30.00"));
    t.now += 5_000;
    t.ok(buy(s("XYZ"), "50.00"));
    assert_eq!(
        t.acct().next_expiry_ms(),
        Some(placed + PENDING_TTL_MS),
        "the older order, a sell, runs out first"
    );
    t.ok(Command::CancelSell);
    assert_eq!(t.acct().next_expiry_ms(), Some(t.now + PENDING_TTL_MS));
    t.now += PENDING_TTL_MS;
    let now = t.now;
    t.acct_mut().expire(now, &mut Vec::new());
    assert_eq!(t.acct().next_expiry_ms(), None, "expired orders are gone");
}

#[test]
fn set_buy_amount_reserves_and_replaces() {
    let mut t = Trader::funded("100.00");
    let symbol = s("ABC");
    t.ok(set_buy_amount(symbol, "60.00"));
    assert_eq!((t.cash(), t.reserved()), (m("40.00"), m("60.00")));
    assert_eq!(t.funds(), [(FundsAction::Remove, m("60.00"))]);
    // The current reserve counts towards a replacement.
    t.ok(set_buy_amount(symbol, "100.00"));
    assert_eq!((t.cash(), t.reserved()), (Money::ZERO, m("100.00")));
    assert_eq!(t.funds(), [(FundsAction::Remove, m("40.00"))]);
    t.ok(set_buy_amount(symbol, "30.00"));
    assert_eq!(t.funds(), [(FundsAction::Add, m("70.00"))]);
    assert_eq!(
        t.refused(set_buy_amount(symbol, "100.01")),
        RejectCode::InsufficientFunds
    );
}

#[test]
fn set_buy_amount_disarms_the_trigger() {
    let mut t = Trader::funded("100.00");
    let symbol = s("ABC");
    t.price = m("20.00");
    t.ok(set_buy_amount(symbol, "50.00"));
    t.ok(set_buy_trigger(symbol, "10.00"));
    assert_eq!(t.acct().armed_triggers().len(), 1);
    t.ok(set_buy_amount(symbol, "50.00"));
    assert!(t.acct().armed_triggers().is_empty());
}

#[test]
fn a_buy_trigger_waits_then_fires_on_a_low_enough_price() {
    let mut t = Trader::funded("100.00");
    let symbol = s("ABC");
    t.price = m("20.00");
    t.ok(set_buy_amount(symbol, "50.00"));
    let Reply::TriggerArmed(armed) = t.ok(set_buy_trigger(symbol, "15.00")) else {
        panic!()
    };
    assert_eq!((armed.current_price, armed.executed), (m("20.00"), None));

    let mut events = Vec::new();
    let account = t.account.as_mut().unwrap();
    assert!(!account.on_price(symbol, m("15.01"), t.now, &mut events));
    assert!(!account.on_price(s("XYZ"), m("1.00"), t.now, &mut events));
    assert!(account.on_price(symbol, m("12.00"), t.now, &mut events));
    // floor(50 / 12) = 4 shares for 48.00; 2.00 comes back.
    assert_eq!(account.shares(symbol), 4);
    assert_eq!(
        (account.cash(), account.reserved_cash()),
        (m("52.00"), Money::ZERO)
    );
    assert!(account.buy_triggers().is_empty());
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].kind,
        EventKind::Funds {
            action: FundsAction::Add,
            amount: m("2.00")
        }
    );
    assert_eq!(
        events[1].kind,
        EventKind::BuyTriggerExecuted {
            symbol,
            shares: 4,
            price: m("12.00"),
            cost: m("48.00")
        }
    );
    assert_eq!(events[1].txn, 3, "recorded against the SET_BUY_TRIGGER");
}

#[test]
fn a_buy_trigger_fires_at_once_when_the_price_is_already_there() {
    let mut t = Trader::funded("100.00");
    let symbol = s("ABC");
    t.price = m("9.00");
    t.ok(set_buy_amount(symbol, "50.00"));
    let Reply::TriggerArmed(armed) = t.ok(set_buy_trigger(symbol, "10.00")) else {
        panic!()
    };
    let executed = armed.executed.expect("fired at once");
    assert_eq!((executed.shares, executed.amount), (5, m("45.00")));
    assert_eq!(
        (t.cash(), t.reserved(), t.acct().shares(symbol)),
        (m("55.00"), Money::ZERO, 5)
    );
}

#[test]
fn a_buy_trigger_that_cannot_buy_a_share_gives_the_reserve_back() {
    let mut t = Trader::funded("100.00");
    let symbol = s("ABC");
    t.price = m("60.00");
    t.ok(set_buy_amount(symbol, "50.00"));
    let Reply::TriggerArmed(armed) = t.ok(set_buy_trigger(symbol, "70.00")) else {
        panic!()
    };
    assert_eq!(armed.executed, None);
    assert_eq!((t.cash(), t.reserved()), (m("100.00"), Money::ZERO));
    assert!(t.acct().buy_triggers().is_empty());
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::BuyTriggerUnfilled { .. }))
    );
}

#[test]
fn buy_trigger_refusals_and_cancel() {
    let mut t = Trader::funded("100.00");
    let symbol = s("ABC");
    assert_eq!(
        t.refused(set_buy_trigger(symbol, "5.00")),
        RejectCode::NoBuyAmount
    );
    assert_eq!(
        t.refused(Command::CancelSetBuy { symbol }),
        RejectCode::NoBuyAmount
    );
    t.ok(set_buy_amount(symbol, "40.00"));
    let reply = t.ok(Command::CancelSetBuy { symbol });
    assert_eq!(
        reply,
        Reply::TriggerCancelled(engine::TriggerCancelled {
            symbol,
            released_cash: m("40.00"),
            released_shares: 0
        })
    );
    assert_eq!((t.cash(), t.reserved()), (m("100.00"), Money::ZERO));
    assert_eq!(
        t.refused(Command::CancelSetBuy { symbol }),
        RejectCode::NoBuyAmount
    );
}

#[test]
fn set_sell_amount_needs_shares_and_releases_an_earlier_reserve() {
    let mut t = Trader::funded("1000.00");
    let symbol = s("ABC");
    assert_eq!(
        t.refused(set_sell_amount(symbol, "10.00")),
        RejectCode::NoHoldings
    );
    t.own("ABC", 10);
    t.ok(set_sell_amount(symbol, "50.00"));
    assert_eq!(
        t.acct().reserved_shares(symbol),
        0,
        "an amount reserves nothing yet"
    );
    t.price = m("5.00");
    t.ok(set_sell_trigger(symbol, "25.00"));
    assert_eq!(
        (t.acct().shares(symbol), t.acct().reserved_shares(symbol)),
        (8, 2)
    );
    t.ok(set_sell_amount(symbol, "75.00"));
    assert_eq!(
        (t.acct().shares(symbol), t.acct().reserved_shares(symbol)),
        (10, 0)
    );
    assert!(t.acct().armed_triggers().is_empty(), "a new amount disarms");
}

#[test]
fn set_sell_amount_counts_the_shares_its_own_trigger_holds() {
    let mut t = Trader::funded("1000.00");
    let symbol = s("ABC");
    t.own("ABC", 2);
    t.ok(set_sell_amount(symbol, "20.00"));
    t.price = m("5.00");
    t.ok(set_sell_trigger(symbol, "10.00"));
    assert_eq!(t.acct().shares(symbol), 0);
    t.ok(set_sell_amount(symbol, "30.00"));
    assert_eq!(t.acct().shares(symbol), 2);
}

#[test]
fn a_sell_trigger_reserves_shares_and_fires_on_a_high_enough_price() {
    let mut t = Trader::funded("1000.00");
    let symbol = s("ABC");
    t.own("ABC", 10);
    t.ok(set_sell_amount(symbol, "100.00"));
    let Reply::TriggerArmed(armed) = t.ok(set_sell_trigger(symbol, "30.00")) else {
        panic!()
    };
    assert_eq!((armed.reserved_shares, armed.executed), (Some(3), None));
    // Re-arming at another price releases the earlier reserve first.
    t.ok(set_sell_trigger(symbol, "25.00"));
    assert_eq!(
        (t.acct().shares(symbol), t.acct().reserved_shares(symbol)),
        (6, 4)
    );

    let cash = t.cash();
    let now = t.now;
    let account = t.account.as_mut().unwrap();
    let mut events = Vec::new();
    assert!(!account.on_price(symbol, m("24.99"), now, &mut events));
    assert!(account.on_price(symbol, m("26.00"), now, &mut events));
    assert_eq!(account.cash(), cash.checked_add(m("104.00")).unwrap());
    assert_eq!(
        (account.shares(symbol), account.reserved_shares(symbol)),
        (6, 0)
    );
    assert!(account.sell_triggers().is_empty());
    assert!(matches!(
        events[1].kind,
        EventKind::SellTriggerExecuted { shares: 4, .. }
    ));
}

#[test]
fn a_sell_trigger_fires_at_once_when_the_price_is_already_there() {
    let mut t = Trader::funded("1000.00");
    let symbol = s("ABC");
    t.own("ABC", 10);
    t.ok(set_sell_amount(symbol, "40.00"));
    let Reply::TriggerArmed(armed) = t.ok(set_sell_trigger(symbol, "8.00")) else {
        panic!()
    };
    let executed = armed.executed.expect("10.00 >= 8.00");
    // floor(40 / 8) = 5 shares reserved, sold at the current 10.00.
    assert_eq!(
        (executed.shares, executed.price, executed.amount),
        (5, m("10.00"), m("50.00"))
    );
    assert_eq!(t.acct().shares(symbol), 5);
}

#[test]
fn sell_trigger_refusals_and_cancel() {
    let mut t = Trader::funded("1000.00");
    let symbol = s("ABC");
    assert_eq!(
        t.refused(set_sell_trigger(symbol, "5.00")),
        RejectCode::NoSellAmount
    );
    assert_eq!(
        t.refused(Command::CancelSetSell { symbol }),
        RejectCode::NoSellAmount
    );
    t.own("ABC", 2);
    t.ok(set_sell_amount(symbol, "30.00"));
    assert_eq!(
        t.refused(set_sell_trigger(symbol, "30.01")),
        RejectCode::AmountTooSmall
    );
    assert_eq!(
        t.refused(set_sell_trigger(symbol, "10.00")),
        RejectCode::InsufficientShares
    );
    t.price = m("1.00");
    t.ok(set_sell_trigger(symbol, "15.00"));
    assert_eq!(t.acct().shares(symbol), 0);
    let reply = t.ok(Command::CancelSetSell { symbol });
    assert_eq!(
        reply,
        Reply::TriggerCancelled(engine::TriggerCancelled {
            symbol,
            released_cash: Money::ZERO,
            released_shares: 2
        })
    );
    assert_eq!(t.acct().shares(symbol), 2);
    assert_eq!(
        t.refused(Command::CancelSetSell { symbol }),
        RejectCode::NoSellAmount
    );
}

#[test]
fn disarmed_triggers_never_fire() {
    let mut t = Trader::funded("1000.00");
    let symbol = s("ABC");
    t.own("ABC", 5);
    t.ok(set_buy_amount(symbol, "100.00"));
    t.ok(set_sell_amount(symbol, "10.00"));
    let before = t.account.clone();
    let now = t.now;
    let account = t.account.as_mut().unwrap();
    assert!(!account.on_price(symbol, m("0.01"), now, &mut Vec::new()));
    assert!(!account.on_price(symbol, m("1000.00"), now, &mut Vec::new()));
    assert_eq!(t.account, before);
}

#[test]
fn display_summary_shows_the_whole_account() {
    let mut t = Trader::funded("1000.00");
    t.own("ABC", 10);
    t.ok(buy(s("X"), "20.00"));
    t.ok(sell(s("ABC"), "30.00"));
    t.ok(set_buy_amount(s("Y"), "50.00"));
    t.ok(set_sell_amount(s("ABC"), "20.00"));
    t.ok(set_sell_trigger(s("ABC"), "11.00"));
    let Reply::Summary(summary) = t.ok(Command::DisplaySummary) else {
        panic!()
    };
    assert_eq!(summary.cash, m("830.00"));
    assert_eq!(summary.reserved_cash, m("70.00"));
    assert_eq!(summary.holdings.len(), 1);
    assert_eq!(
        (
            summary.holdings[0].shares,
            summary.holdings[0].reserved_shares
        ),
        (6, 4)
    );
    assert_eq!(summary.pending_buys.len(), 1);
    assert_eq!(summary.pending_sells.len(), 1);
    assert!(!summary.buy_triggers[0].armed);
    assert_eq!(summary.sell_triggers[0].reserved_shares, 1);
    assert!(summary.sell_triggers[0].armed);
    assert_eq!(t.ok(Command::DumpLog), Reply::DumpLog(engine::Empty {}));
}

#[test]
fn replies_serialize_as_plain_json_objects() {
    let reply = Reply::Quote(engine::Quote {
        symbol: s("ABC"),
        price: m("58.17"),
    });
    assert_eq!(
        serde_json::to_string(&reply).unwrap(),
        r#"{"symbol":"ABC","price":"58.17"}"#
    );
}

#[test]
fn refusals_show_money_in_dollars_and_shares_as_counts() {
    let message = |t: &mut Trader, command| t.run(command).unwrap_err().message;
    let mut t = Trader::funded("12.00");
    t.price = m("1666.62");
    assert_eq!(
        message(&mut t, buy(s("ABC"), "5000.00")),
        "Buying 3 ABC at $1,666.62 needs $4,999.86, but only $12.00 is available."
    );
    assert_eq!(
        message(&mut t, buy(s("ABC"), "5.00")),
        "$5.00 does not buy one share at $1,666.62."
    );
    t.price = m("2.00");
    t.ok(buy(s("ABC"), "4.00"));
    t.ok(Command::CommitBuy);
    assert_eq!(
        message(&mut t, sell(s("ABC"), "1000.00")),
        "Selling $1,000.00 of ABC at $2.00 needs 500 shares, but only 2 are available."
    );
    assert_eq!(
        message(&mut t, set_buy_amount(s("XYZ"), "20.00")),
        "Setting $20.00 aside for buying XYZ needs more than the $8.00 available."
    );
}
