//! Notifications: what a trader is told about the steps that happened to
//! their account without them asking at that moment (a trigger that fired
//! or could not, a pending order that ran out of time).
//!
//! They are derived from the engine's events inside [`crate::batch::apply`],
//! so every back end writes them in the same transaction as the step that
//! caused them, and the wording lives in one pure function here.

use engine::{Event, EventKind, Money, Symbol, UserId};
use serde::Serialize;

/// What a notification is about. Serialized as `trigger_executed`,
/// `trigger_unfilled`, `order_expired`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A buy or sell trigger executed.
    TriggerExecuted,
    /// A buy trigger fired but its reserve could not buy a single share.
    TriggerUnfilled,
    /// A pending buy or sell was not committed within 60 s.
    OrderExpired,
}

impl NotificationKind {
    /// The stored and serialized name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationKind::TriggerExecuted => "trigger_executed",
            NotificationKind::TriggerUnfilled => "trigger_unfilled",
            NotificationKind::OrderExpired => "order_expired",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationKind> {
        [
            NotificationKind::TriggerExecuted,
            NotificationKind::TriggerUnfilled,
            NotificationKind::OrderExpired,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// A stored notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Increasing with time, per database: the key notifications are paged by.
    pub id: i64,
    pub user: UserId,
    pub created_ms: i64,
    pub kind: NotificationKind,
    pub message: String,
    /// The transaction number of the command that placed the order or armed
    /// the trigger.
    pub txn: i64,
    pub read: bool,
}

/// A notification to write with the step that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub user: UserId,
    pub created_ms: i64,
    pub kind: NotificationKind,
    pub message: String,
    pub txn: i64,
}

impl NewNotification {
    /// The notification `event` gives `user`, if it is one a trader is told
    /// about (cash movements are not: the trader sees them in the reply).
    pub fn for_event(user: &UserId, event: &Event, created_ms: i64) -> Option<NewNotification> {
        let (kind, message) = describe(&event.kind)?;
        Some(NewNotification {
            user: user.clone(),
            created_ms,
            kind,
            message,
            txn: event.txn,
        })
    }
}

/// The kind and the human sentence for an event, or `None` for events that
/// are not notified.
pub fn describe(event: &EventKind) -> Option<(NotificationKind, String)> {
    Some(match *event {
        EventKind::Funds { .. } => return None,
        EventKind::BuyTriggerExecuted {
            symbol,
            shares,
            price,
            cost,
        } => (
            NotificationKind::TriggerExecuted,
            format!(
                "Your buy trigger on {symbol} bought {} at {} for {}.",
                shares_text(shares),
                price.dollars(),
                cost.dollars()
            ),
        ),
        EventKind::SellTriggerExecuted {
            symbol,
            shares,
            price,
            proceeds,
        } => (
            NotificationKind::TriggerExecuted,
            format!(
                "Your sell trigger on {symbol} sold {} at {} for {}.",
                shares_text(shares),
                price.dollars(),
                proceeds.dollars()
            ),
        ),
        EventKind::BuyTriggerUnfilled {
            symbol,
            price,
            refund,
        } => {
            let (price, refund) = (price.dollars(), refund.dollars());
            (
                NotificationKind::TriggerUnfilled,
                format!(
                    "Your buy trigger on {symbol} fired at {price}, but its {refund} could not \
                     buy a single share; the {refund} is back in your cash."
                ),
            )
        }
        EventKind::BuyExpired {
            symbol,
            shares,
            price,
            refund,
        } => (
            NotificationKind::OrderExpired,
            format!(
                "{}; {} is back in your cash.",
                expired("buy", symbol, shares, price),
                refund.dollars()
            ),
        ),
        EventKind::SellExpired {
            symbol,
            shares,
            price,
        } => (
            NotificationKind::OrderExpired,
            format!(
                "{}; the shares are back in your holdings.",
                expired("sell", symbol, shares, price)
            ),
        ),
    })
}

fn expired(side: &str, symbol: Symbol, shares: i64, price: Money) -> String {
    format!(
        "Your {side} of {} of {symbol} at {} was not committed within 60 seconds and expired",
        shares_text(shares),
        price.dollars()
    )
}

fn shares_text(shares: i64) -> String {
    if shares == 1 {
        "1 share".to_owned()
    } else {
        format!("{shares} shares")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abc() -> Symbol {
        Symbol::parse("ABC").unwrap()
    }

    #[test]
    fn every_notified_event_reads_as_a_sentence() {
        let cents = Money::from_cents;
        let cases = [
            (
                EventKind::BuyTriggerExecuted {
                    symbol: abc(),
                    shares: 4,
                    price: cents(1200),
                    cost: cents(4800),
                },
                NotificationKind::TriggerExecuted,
                "Your buy trigger on ABC bought 4 shares at $12.00 for $48.00.",
            ),
            (
                EventKind::SellTriggerExecuted {
                    symbol: abc(),
                    shares: 1,
                    price: cents(1200),
                    proceeds: cents(1200),
                },
                NotificationKind::TriggerExecuted,
                "Your sell trigger on ABC sold 1 share at $12.00 for $12.00.",
            ),
            (
                EventKind::BuyTriggerUnfilled {
                    symbol: abc(),
                    price: cents(1200),
                    refund: cents(1000),
                },
                NotificationKind::TriggerUnfilled,
                "Your buy trigger on ABC fired at $12.00, but its $10.00 could not buy a single \
                 share; the $10.00 is back in your cash.",
            ),
            (
                EventKind::BuyExpired {
                    symbol: abc(),
                    shares: 2,
                    price: cents(500),
                    refund: cents(1000),
                },
                NotificationKind::OrderExpired,
                "Your buy of 2 shares of ABC at $5.00 was not committed within 60 seconds and \
                 expired; $10.00 is back in your cash.",
            ),
            (
                EventKind::SellExpired {
                    symbol: abc(),
                    shares: 3,
                    price: cents(500),
                },
                NotificationKind::OrderExpired,
                "Your sell of 3 shares of ABC at $5.00 was not committed within 60 seconds and \
                 expired; the shares are back in your holdings.",
            ),
        ];
        for (event, kind, message) in cases {
            assert_eq!(describe(&event), Some((kind, message.to_owned())));
        }
        let funds = EventKind::Funds {
            action: engine::FundsAction::Add,
            amount: cents(1),
        };
        assert_eq!(describe(&funds), None, "cash moves are in the reply");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [
            NotificationKind::TriggerExecuted,
            NotificationKind::TriggerUnfilled,
            NotificationKind::OrderExpired,
        ] {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(NotificationKind::parse("TriggerExecuted"), None);
    }
}
