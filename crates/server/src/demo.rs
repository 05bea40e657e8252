//! `daytrader serve --demo`: a market a newcomer can try the pages on.
//!
//! A few traders, each with a password made now and shown once, cash,
//! holdings and armed triggers; prices that move (the built-in random
//! walk, fetched afresh every few seconds), so that triggers fire while
//! someone watches. Every step has a fixed transaction number, so a second
//! start with `--demo` changes nothing: the traders exist already, and
//! their passwords are not shown again. Without `--demo` nothing of this
//! happens: tests and workload replays get fixed prices and no traders.

use engine::{CommandName, CommandRequest, Money, Symbol, UserId};
use store::{JobError, StoreError};

use crate::auth::generate_token;
use crate::service::{ServiceError, Trading};

/// A demo trader: their name, and the first steps of their account.
struct Trader {
    user: &'static str,
    cash: &'static str,
    /// Bought and committed at once: holdings to look at.
    holding: Option<(&'static str, &'static str)>,
    /// A trigger armed a few percent away from the current price, so the
    /// walk fires it within minutes: (buy or sell, symbol, amount, how far
    /// from the price in percent).
    trigger: Option<(CommandName, &'static str, &'static str, i64)>,
}

const TRADERS: [Trader; 3] = [
    Trader {
        user: "alice",
        cash: "10000.00",
        holding: Some(("ABC", "2000.00")),
        trigger: Some((CommandName::SetBuyTrigger, "XYZ", "1000.00", -3)),
    },
    Trader {
        user: "bob",
        cash: "25000.00",
        holding: Some(("XYZ", "5000.00")),
        trigger: Some((CommandName::SetSellTrigger, "XYZ", "1000.00", 3)),
    },
    Trader {
        user: "carol",
        cash: "5000.00",
        holding: None,
        trigger: None,
    },
];

/// What seeding did.
#[derive(Debug, Default)]
pub struct Seeded {
    /// Traders made now, with their passwords: the only time they are
    /// known outside the hash.
    pub created: Vec<(UserId, String)>,
    /// Traders an earlier `--demo` start made.
    pub existing: Vec<UserId>,
}

/// Makes the demo traders that do not exist yet.
pub async fn seed(trading: &Trading) -> Result<Seeded, ServiceError> {
    let mut seeded = Seeded::default();
    for trader in &TRADERS {
        let user = UserId::parse(trader.user).expect("a valid user id");
        let password = generate_token()[..16].to_owned();
        let hash = crate::web::password::hash(password.clone())
            .await
            .map_err(|_| StoreError::Unavailable("a demo password could not be hashed".into()))?;
        match trading.register(user.clone(), hash, 1).await {
            Ok(done) if !done.duplicate => {}
            Ok(_) | Err(ServiceError::Store(StoreError::Job(JobError::UserTaken(_)))) => {
                seeded.existing.push(user);
                continue;
            }
            Err(error) => return Err(error),
        }
        first_steps(trading, &user, trader).await?;
        seeded.created.push((user, password));
    }
    Ok(seeded)
}

/// Cash, a holding and a trigger, each step under its own transaction
/// number (2 onwards; 1 registered the trader).
async fn first_steps(
    trading: &Trading,
    user: &UserId,
    trader: &Trader,
) -> Result<(), ServiceError> {
    let mut txn = 1;
    let mut run = |name: CommandName, symbol: Option<&str>, amount: Option<String>| {
        txn += 1;
        let request =
            CommandRequest::new(name, Some(user.as_str()), symbol, amount.as_deref(), None)
                .expect("the demo's commands are well formed");
        trading.execute(request, Some(txn))
    };
    run(CommandName::Add, None, Some(trader.cash.to_owned())).await?;
    if let Some((symbol, amount)) = trader.holding {
        run(CommandName::Buy, Some(symbol), Some(amount.to_owned())).await?;
        run(CommandName::CommitBuy, None, None).await?;
    }
    if let Some((side, symbol, amount, percent)) = trader.trigger {
        let set_amount = if side == CommandName::SetBuyTrigger {
            CommandName::SetBuyAmount
        } else {
            CommandName::SetSellAmount
        };
        run(set_amount, Some(symbol), Some(amount.to_owned())).await?;
        let price = trading
            .quotes()
            .get(Symbol::parse(symbol).expect("a valid symbol"), user)
            .await?
            .price;
        let at = Money::from_cents((price.cents() * (100 + percent) / 100).max(1));
        run(side, Some(symbol), Some(at.to_string())).await?;
    }
    Ok(())
}
