//! Invariants over random command sequences:
//! - no balance or holding ever goes negative;
//! - cash + reserved cash + money spent on shares moves only by deposits and
//!   sales; shares held + reserved move only by purchases and sales;
//! - every change of cash is recorded as an account transaction;
//! - a refused command changes nothing (beyond releasing expired orders);
//! - cancelling or expiring restores exactly what was reserved;
//! - the stored form round-trips;
//! - the cost basis and realized gain follow the average-cost rule, as a
//!   model kept from the fills alone computes it, and money is conserved:
//!   cash + reserved cash + cost basis − realized gain = deposits.

use std::collections::BTreeMap;

use engine::{
    Account, Command, Context, Event, EventKind, FundsAction, Money, PENDING_TTL_MS, Reply, Symbol,
    execute,
};
use proptest::prelude::*;

const SYMBOLS: [&str; 3] = ["A", "BC", "DEF"];

fn symbol() -> impl Strategy<Value = Symbol> {
    prop::sample::select(&SYMBOLS[..]).prop_map(|s| Symbol::parse(s).unwrap())
}

/// Amounts from one cent to a few thousand dollars, weighted to the range
/// where share counts are small and refusals common.
fn amount() -> impl Strategy<Value = Money> {
    prop_oneof![1i64..100, 100i64..5_000, 5_000i64..500_000].prop_map(Money::from_cents)
}

fn price() -> impl Strategy<Value = Money> {
    prop_oneof![1i64..200, 200i64..10_000].prop_map(Money::from_cents)
}

#[derive(Clone, Debug)]
enum Step {
    Run(Command, Money),
    /// A new price becomes known for a symbol.
    Price(Symbol, Money),
    /// Time passes.
    Wait(i64),
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        amount().prop_map(|amount| Command::Add { amount }),
        symbol().prop_map(|symbol| Command::Quote { symbol }),
        (symbol(), amount()).prop_map(|(symbol, amount)| Command::Buy { symbol, amount }),
        Just(Command::CommitBuy),
        Just(Command::CancelBuy),
        (symbol(), amount()).prop_map(|(symbol, amount)| Command::Sell { symbol, amount }),
        Just(Command::CommitSell),
        Just(Command::CancelSell),
        (symbol(), amount()).prop_map(|(symbol, amount)| Command::SetBuyAmount { symbol, amount }),
        (symbol(), price()).prop_map(|(symbol, price)| Command::SetBuyTrigger { symbol, price }),
        symbol().prop_map(|symbol| Command::CancelSetBuy { symbol }),
        (symbol(), amount()).prop_map(|(symbol, amount)| Command::SetSellAmount { symbol, amount }),
        (symbol(), price()).prop_map(|(symbol, price)| Command::SetSellTrigger { symbol, price }),
        symbol().prop_map(|symbol| Command::CancelSetSell { symbol }),
        Just(Command::DisplaySummary),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (command(), price()).prop_map(|(c, p)| Step::Run(c, p)),
        1 => (symbol(), price()).prop_map(|(s, p)| Step::Price(s, p)),
        1 => prop_oneof![0i64..1_000, Just(PENDING_TTL_MS - 1), Just(PENDING_TTL_MS), 0i64..200_000].prop_map(Step::Wait),
    ]
}

/// The money and shares that entered and left the account, from the
/// outside: deposits, purchases, sales.
#[derive(Default)]
struct Ledger {
    deposited: i64,
    spent: i64,
    proceeds: i64,
    bought: BTreeMap<Symbol, i64>,
    sold: BTreeMap<Symbol, i64>,
    /// The model of the average-cost rule: cost basis per symbol, and the
    /// realized gain, kept from the fills alone.
    basis: BTreeMap<Symbol, i128>,
    realized_gain: i128,
}

impl Ledger {
    fn record(&mut self, command: &Command, reply: &Reply) {
        match (command, reply) {
            (Command::Add { amount }, _) => self.deposited += amount.cents(),
            (Command::CommitBuy, Reply::Settled(order)) => {
                self.buy(order.symbol, order.shares, order.amount);
            }
            (Command::CommitSell, Reply::Settled(order)) => {
                self.sell(order.symbol, order.shares, order.amount);
            }
            _ => {}
        }
    }

    fn record_events(&mut self, events: &[Event]) {
        for event in events {
            match event.kind {
                EventKind::BuyTriggerExecuted {
                    symbol,
                    shares,
                    cost,
                    ..
                } => self.buy(symbol, shares, cost),
                EventKind::SellTriggerExecuted {
                    symbol,
                    shares,
                    proceeds,
                    ..
                } => self.sell(symbol, shares, proceeds),
                _ => {}
            }
        }
    }
}

impl Ledger {
    fn owned(&self, symbol: Symbol) -> i64 {
        self.bought.get(&symbol).copied().unwrap_or(0)
            - self.sold.get(&symbol).copied().unwrap_or(0)
    }

    fn buy(&mut self, symbol: Symbol, shares: i64, cost: Money) {
        self.spent += cost.cents();
        *self.bought.entry(symbol).or_default() += shares;
        *self.basis.entry(symbol).or_default() += i128::from(cost.cents());
    }

    /// The rule written another way: the exact quotient, then up by one
    /// when the remainder is at least half the divisor.
    fn sell(&mut self, symbol: Symbol, shares: i64, proceeds: Money) {
        let owned = i128::from(self.owned(symbol));
        let basis = self.basis.entry(symbol).or_default();
        let product = *basis * i128::from(shares);
        let removed = product / owned + i128::from(2 * (product % owned) >= owned);
        *basis -= removed;
        self.realized_gain += i128::from(proceeds.cents()) - removed;
        self.proceeds += proceeds.cents();
        *self.sold.entry(symbol).or_default() += shares;
    }
}

fn funds_delta(events: &[Event]) -> i64 {
    events
        .iter()
        .map(|e| match e.kind {
            EventKind::Funds {
                action: FundsAction::Add,
                amount,
            } => amount.cents(),
            EventKind::Funds {
                action: FundsAction::Remove,
                amount,
            } => -amount.cents(),
            _ => 0,
        })
        .sum()
}

fn check_invariants(account: &Account, ledger: &Ledger) {
    assert!(account.cash() >= Money::ZERO, "negative cash");
    assert!(account.reserved_cash() >= Money::ZERO);
    assert_eq!(
        account.cash().cents() + account.reserved_cash().cents() + ledger.spent,
        ledger.deposited + ledger.proceeds,
        "cash + reserved + spent must equal deposits + proceeds"
    );
    let mut total_basis = 0i128;
    for symbol in SYMBOLS.map(|s| Symbol::parse(s).unwrap()) {
        let shares = account.shares(symbol);
        let reserved = account.reserved_shares(symbol);
        assert!(shares >= 0 && reserved >= 0, "negative holding of {symbol}");
        let net = ledger.bought.get(&symbol).copied().unwrap_or(0)
            - ledger.sold.get(&symbol).copied().unwrap_or(0);
        assert_eq!(
            shares + reserved,
            net,
            "shares of {symbol} held + reserved must equal bought - sold"
        );
        let basis = ledger.basis.get(&symbol).copied().unwrap_or(0);
        assert_eq!(
            i128::from(account.costs().basis(symbol).cents()),
            basis,
            "cost basis of {symbol}"
        );
        let average = engine::average_price(account.costs().basis(symbol), net)
            .map(|m| i128::from(m.cents()));
        let model_average = (net > 0).then(|| {
            let net = i128::from(net);
            basis / net + i128::from(2 * (basis % net) >= net)
        });
        assert_eq!(average, model_average, "average price of {symbol}");
        total_basis += basis;
    }
    assert_eq!(
        i128::from(account.costs().realized_gain().cents()),
        ledger.realized_gain,
        "realized gain"
    );
    assert_eq!(
        i128::from(account.cash().cents() + account.reserved_cash().cents()) + total_basis
            - ledger.realized_gain,
        i128::from(ledger.deposited),
        "money is conserved: cash + reserved + cost basis - realized gain = deposits"
    );
    for buy in account.pending_buys() {
        assert!(buy.shares >= 1 && buy.price.is_positive());
    }
    for sell in account.pending_sells() {
        assert!(sell.shares >= 1 && sell.price.is_positive());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_over_any_sequence(first in amount(), steps in prop::collection::vec(step(), 1..120)) {
        let mut account: Option<Account> = None;
        let mut ledger = Ledger::default();
        let mut now = 1_700_000_000_000i64;
        let mut events = Vec::new();
        let ctx = Context { now_ms: now, txn: 1, price: None };
        execute(&mut account, &Command::Add { amount: first }, &ctx, &mut events).unwrap();
        ledger.deposited += first.cents();

        for (i, step) in steps.iter().enumerate() {
            let acct = account.as_mut().unwrap();
            events.clear();
            let cash_before = acct.cash().cents();
            match step {
                Step::Run(command, price) => {
                    let ctx = Context { now_ms: now, txn: i as i64 + 2, price: Some(*price) };
                    let mut expired_only = acct.clone();
                    expired_only.expire(now, &mut Vec::new());
                    match acct.execute(command, &ctx, &mut events) {
                        Ok(reply) => ledger.record(command, &reply),
                        Err(_) => prop_assert_eq!(&*acct, &expired_only, "a refusal changes nothing but expiries"),
                    }
                }
                Step::Price(symbol, price) => {
                    acct.on_price(*symbol, *price, now, &mut events);
                }
                Step::Wait(ms) => {
                    now += ms;
                    continue;
                }
            }
            ledger.record_events(&events);
            prop_assert_eq!(acct.cash().cents() - cash_before, funds_delta(&events), "every cash change is recorded");
            check_invariants(acct, &ledger);
        }
    }

    #[test]
    fn cancelling_restores_exactly_what_was_reserved(
        setup in prop::collection::vec((command(), price()), 0..40),
        symbol in symbol(),
        amount in amount(),
        price in price(),
        trigger in price(),
    ) {
        let base = build(&setup);
        let ctx = Context { now_ms: NOW, txn: 1_000, price: Some(price) };
        let pairs: [(Vec<Command>, Command); 4] = [
            (vec![Command::Buy { symbol, amount }], Command::CancelBuy),
            (vec![Command::Sell { symbol, amount }], Command::CancelSell),
            (vec![Command::SetBuyAmount { symbol, amount }], Command::CancelSetBuy { symbol }),
            (
                vec![Command::SetSellAmount { symbol, amount }, Command::SetSellTrigger { symbol, price: trigger }],
                Command::CancelSetSell { symbol },
            ),
        ];
        for (reserve, cancel) in pairs {
            // Only from a state without a trigger on the symbol, so that the
            // reserve is the whole of what the cancel gives back.
            let mut account = base.clone();
            if account.buy_triggers().contains_key(&symbol) || account.sell_triggers().contains_key(&symbol) {
                continue;
            }
            let mut events = Vec::new();
            let reserved = reserve.iter().all(|c| account.execute(c, &ctx, &mut events).is_ok());
            let unfired = account.buy_triggers().contains_key(&symbol) || account.sell_triggers().contains_key(&symbol)
                || !matches!(cancel, Command::CancelSetBuy { .. } | Command::CancelSetSell { .. });
            if reserved && unfired {
                account.execute(&cancel, &ctx, &mut events).unwrap();
                prop_assert_eq!(&account, &base, "{:?} then {:?}", reserve, cancel);
            }
        }
    }

    #[test]
    fn expiring_restores_exactly_what_was_reserved(
        setup in prop::collection::vec((command(), price()), 0..40),
        symbol in symbol(),
        amount in amount(),
        price in price(),
        late in 0i64..100_000,
    ) {
        let base = build(&setup);
        let ctx = Context { now_ms: NOW, txn: 1_000, price: Some(price) };
        for order in [Command::Buy { symbol, amount }, Command::Sell { symbol, amount }] {
            let mut account = base.clone();
            if account.execute(&order, &ctx, &mut Vec::new()).is_ok() {
                let at = NOW + PENDING_TTL_MS + late;
                let mut later = base.clone();
                later.expire(at, &mut Vec::new());
                account.expire(at, &mut Vec::new());
                // The same balances, orders and triggers; the account also
                // remembers the order expired (for a later commit's refusal).
                prop_assert_eq!(account.summary(at), later.summary(at));
                let remembered = match order {
                    Command::Buy { .. } => &account.last_expired().buy,
                    _ => &account.last_expired().sell,
                };
                prop_assert_eq!(remembered.as_ref().map(|o| (o.symbol, o.expired_at_ms)), Some((symbol, NOW + PENDING_TTL_MS)));
            }
        }
    }

    #[test]
    fn the_stored_form_round_trips(setup in prop::collection::vec((command(), price()), 0..60)) {
        let account = build(&setup);
        let bytes = postcard::to_allocvec(&account).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Account>(&bytes).unwrap(), account.clone());
        let json = serde_json::to_string(&account).unwrap();
        prop_assert_eq!(serde_json::from_str::<Account>(&json).unwrap(), account);
    }
}

const NOW: i64 = 1_700_000_000_000;

/// An account after running `setup` (refusals skipped), all at one instant.
fn build(setup: &[(Command, Money)]) -> Account {
    let mut account = Account::default();
    let mut events = Vec::new();
    let fund = Context {
        now_ms: NOW,
        txn: 1,
        price: None,
    };
    account
        .execute(
            &Command::Add {
                amount: Money::from_cents(1_000_000),
            },
            &fund,
            &mut events,
        )
        .unwrap();
    for (i, (command, price)) in setup.iter().enumerate() {
        let ctx = Context {
            now_ms: NOW,
            txn: i as i64 + 2,
            price: Some(*price),
        };
        let _ = account.execute(command, &ctx, &mut events);
    }
    account
}
