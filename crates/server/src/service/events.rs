//! What the trading service tells the live event streams (SPEC 4b): the
//! events a committed step produced, derived from what the store answered,
//! and new prices. The payloads are built here, once; the bus
//! ([`cache::EventBus`]) carries them to the streams on every instance,
//! and `crate::api::events` serves them.

use std::collections::BTreeSet;

use cache::EventBus;
use engine::{Account, Money, Symbol, UserId};
use serde::Serialize;
use store::notification::describe;
use store::{Done, Notification, Reader, Reads, Record};

/// The `data` of one event.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData<'a> {
    /// After every command of the user.
    Account {
        transaction_num: i64,
        command: &'static str,
        /// `ok`, or the error code of the refusal.
        outcome: &'static str,
        cash: Money,
        reserved_cash: Money,
    },
    /// A new notification, exactly as the notifications list shows it.
    Notification(&'a Notification),
    /// A new price of a symbol the user holds or has triggers on.
    Quote {
        symbol: Symbol,
        price: Money,
        /// When it was fetched, Unix ms.
        at: i64,
    },
}

impl EventData<'_> {
    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
}

/// Publishes on the bus. Never blocks and never fails: a step's outcome
/// does not depend on who listens.
#[derive(Clone)]
pub struct Publisher {
    bus: EventBus,
    reader: Reader,
}

impl Publisher {
    pub fn new(bus: EventBus, reader: Reader) -> Publisher {
        Publisher { bus, reader }
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Publishes what `user`'s committed step `done` produced: an account
    /// event for a command, and a notification event for each notification
    /// the step wrote. A replayed command produced nothing new.
    pub fn published(&self, user: &UserId, done: &Done) {
        if done.duplicate {
            return;
        }
        if let Record::Command {
            request,
            outcome,
            balance: Some(balance),
            ..
        } = &done.record
        {
            let data = EventData::Account {
                transaction_num: done.txn,
                command: request.name.as_str(),
                outcome: match outcome {
                    Ok(_) => "ok",
                    Err(rejection) => rejection.code.as_str(),
                },
                cash: balance.cash,
                reserved_cash: balance.reserved_cash,
            };
            self.bus.publish(user.as_str(), data.to_json());
        }
        let noted = done
            .record
            .events()
            .iter()
            .filter(|event| describe(&event.kind).is_some())
            .count();
        if noted > 0 {
            self.publish_notifications(user.clone(), done.ts_ms, noted);
        }
    }

    /// The notifications carry the ids the database gave them, so they are
    /// read back (on a task of their own: the step that made them does not
    /// wait): the user's newest `count` made at `ts_ms`, oldest first.
    fn publish_notifications(&self, user: UserId, ts_ms: i64, count: usize) {
        let publisher = self.clone();
        tokio::spawn(async move {
            // Later steps may have added more since: read a few extra and
            // keep this step's.
            let newest = match publisher.reader.notifications(&user, None, count + 8).await {
                Ok(newest) => newest,
                Err(error) => {
                    tracing::warn!(%error, %user, "could not read notifications to publish");
                    return;
                }
            };
            for notification in newest.iter().rev().filter(|n| n.created_ms == ts_ms) {
                let data = EventData::Notification(notification);
                publisher.bus.publish(user.as_str(), data.to_json());
            }
        });
    }

    /// Publishes a new price of `symbol`, fetched at `at` (Unix ms), to every
    /// stream that watches the symbol.
    pub fn quote(&self, symbol: Symbol, price: Money, at: i64) {
        let data = EventData::Quote { symbol, price, at };
        self.bus.publish_quote(symbol.as_str(), data.to_json());
    }
}

/// The symbols whose prices a user's stream carries: those the account
/// holds (reserved shares included) or has a trigger on.
pub fn watched_symbols(account: &Account) -> BTreeSet<Symbol> {
    account
        .symbols_held()
        .chain(account.buy_triggers().keys().copied())
        .chain(account.sell_triggers().keys().copied())
        .collect()
}
