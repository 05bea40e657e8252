//! The result of an accepted command, as the API returns it.

use serde::{Deserialize, Serialize, Serializer};

use crate::money::Money;
use crate::summary::Summary;
use crate::symbol::Symbol;

/// What an accepted command did.
///
/// In human-readable formats (the JSON API) a reply is written without a tag,
/// as the response envelope already names the command; in compact formats
/// (stored records) it is tagged so it can be read back. Only the tagged form
/// is ever read back.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum Reply {
    /// ADD.
    Added(Added),
    /// QUOTE.
    Quote(Quote),
    /// BUY and SELL: an order waiting for its commit.
    Pending(OrderPlaced),
    /// COMMIT_BUY, CANCEL_BUY, COMMIT_SELL, CANCEL_SELL: the order that was
    /// popped, at the price it was reserved at.
    Settled(SettledOrder),
    /// SET_BUY_AMOUNT and SET_SELL_AMOUNT.
    TriggerAmount(TriggerAmount),
    /// SET_BUY_TRIGGER and SET_SELL_TRIGGER: the trigger is armed, or it
    /// fired at once against the current price.
    TriggerArmed(ArmedTrigger),
    /// CANCEL_SET_BUY and CANCEL_SET_SELL.
    TriggerCancelled(TriggerCancelled),
    /// DISPLAY_SUMMARY.
    Summary(Box<Summary>),
    /// DUMPLOG: the log itself is the answer.
    DumpLog(Empty),
}

macro_rules! serialize_reply {
    ($($variant:ident = $index:literal),*) => {
        impl Serialize for Reply {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Reply::$variant(inner) => {
                        if serializer.is_human_readable() {
                            inner.serialize(serializer)
                        } else {
                            serializer.serialize_newtype_variant("Reply", $index, stringify!($variant), inner)
                        }
                    })*
                }
            }
        }
    };
}

// The indexes are the declaration order, which derived `Deserialize` reads.
serialize_reply!(
    Added = 0,
    Quote = 1,
    Pending = 2,
    Settled = 3,
    TriggerAmount = 4,
    TriggerArmed = 5,
    TriggerCancelled = 6,
    Summary = 7,
    DumpLog = 8
);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    pub added: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub symbol: Symbol,
    pub price: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    /// shares × price: the cash reserved for a buy, the proceeds of a sell.
    pub amount: Money,
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledOrder {
    pub symbol: Symbol,
    pub shares: i64,
    pub price: Money,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerAmount {
    pub symbol: Symbol,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedTrigger {
    pub symbol: Symbol,
    pub trigger_price: Money,
    /// The shares a sell trigger reserved; none for a buy trigger.
    pub reserved_shares: Option<i64>,
    /// The price it was checked against when armed.
    pub current_price: Money,
    /// Set when the trigger fired at once.
    pub executed: Option<Execution>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub shares: i64,
    pub price: Money,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerCancelled {
    pub symbol: Symbol,
    pub released_cash: Money,
    pub released_shares: i64,
}

/// A reply with nothing to say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Reply> {
        let symbol = Symbol::parse("ABC").unwrap();
        let money = Money::from_cents(1234);
        vec![
            Reply::Added(Added { added: money }),
            Reply::Quote(Quote {
                symbol,
                price: money,
            }),
            Reply::Pending(OrderPlaced {
                symbol,
                shares: 2,
                price: money,
                amount: money,
                expires_at_ms: 5,
            }),
            Reply::Settled(SettledOrder {
                symbol,
                shares: 2,
                price: money,
                amount: money,
            }),
            Reply::TriggerAmount(TriggerAmount {
                symbol,
                amount: money,
            }),
            Reply::TriggerArmed(ArmedTrigger {
                symbol,
                trigger_price: money,
                reserved_shares: Some(3),
                current_price: money,
                executed: Some(Execution {
                    shares: 1,
                    price: money,
                    amount: money,
                }),
            }),
            Reply::TriggerCancelled(TriggerCancelled {
                symbol,
                released_cash: money,
                released_shares: 0,
            }),
            Reply::Summary(Box::new(crate::Account::default().summary(0))),
            Reply::DumpLog(Empty {}),
        ]
    }

    #[test]
    fn every_variant_round_trips_in_the_stored_form() {
        for reply in all() {
            let bytes = postcard::to_allocvec(&reply).unwrap();
            assert_eq!(postcard::from_bytes::<Reply>(&bytes).unwrap(), reply);
        }
    }

    #[test]
    fn json_is_untagged() {
        let json = serde_json::to_string(&all()[1]).unwrap();
        assert_eq!(json, r#"{"symbol":"ABC","price":"12.34"}"#);
        assert_eq!(serde_json::to_string(&all()[8]).unwrap(), "{}");
    }
}
