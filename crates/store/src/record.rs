//! What one row of the audit log holds: everything needed to render its XML
//! entries, to answer a retried command with its first outcome, and to
//! replay the engine for an audit.

use engine::{
    CommandName, CommandRequest, Event, EventKind, Money, Rejection, Reply, Symbol, UserId,
};
use serde::{Deserialize, Serialize};

/// A reply actually fetched from the quote service (each costs 5 cents).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteFetch {
    pub symbol: Symbol,
    pub price: Money,
    /// The user id sent to the quote service.
    pub user: String,
    pub quote_server_time_ms: i64,
    pub cryptokey: String,
}

/// The price a command used, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuoteUse {
    /// This command's request fetched it from the quote service.
    Fetched(QuoteFetch),
    /// It came from the cache.
    Cached { symbol: Symbol, price: Money },
}

impl QuoteUse {
    pub fn symbol(&self) -> Symbol {
        match self {
            QuoteUse::Fetched(fetch) => fetch.symbol,
            QuoteUse::Cached { symbol, .. } => *symbol,
        }
    }

    pub fn price(&self) -> Money {
        match self {
            QuoteUse::Fetched(fetch) => fetch.price,
            QuoteUse::Cached { price, .. } => *price,
        }
    }
}

/// A user's balances right after a step.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub cash: Money,
    pub reserved_cash: Money,
}

/// One atomic step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A command, accepted or refused.
    Command {
        request: CommandRequest,
        quote: Option<QuoteUse>,
        outcome: Result<Reply, Rejection>,
        /// The user's balances after it, when the user exists.
        balance: Option<Balance>,
        events: Vec<Event>,
    },
    /// A new price for `symbol` fired some of a user's triggers.
    Price {
        symbol: Symbol,
        price: Money,
        events: Vec<Event>,
    },
    /// A quote fetched outside any command that was executed: by the
    /// trigger engine's refresh, or by a retried command that turned out to
    /// have run already.
    Quote(QuoteFetch),
    /// The user registered on the web pages: an empty account came into
    /// being with their credentials. The course's log format has no entry
    /// for it, so it renders none; the audit replays it.
    Registered,
    /// The expiry task released the user's pending orders that ran out at
    /// the row's time (their expiry time, not when the task ran), with no
    /// command of the user's.
    Expired { events: Vec<Event> },
}

/// The first byte of every stored record: the encoding's version, so that a
/// later format can still read the rows written before it.
const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record")]
    Empty,
    #[error("record format version {0} is not known to this build")]
    UnknownVersion(u8),
    #[error("corrupt record: {0}")]
    Corrupt(#[from] postcard::Error),
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![FORMAT_V1]).expect("writing to a Vec cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        match bytes.split_first() {
            None => Err(DecodeError::Empty),
            Some((&FORMAT_V1, rest)) => Ok(postcard::from_bytes(rest)?),
            Some((&version, _)) => Err(DecodeError::UnknownVersion(version)),
        }
    }

    /// The price this step fetched from the quote service, if it did.
    pub fn fetch(&self) -> Option<&QuoteFetch> {
        match self {
            Record::Quote(fetch)
            | Record::Command {
                quote: Some(QuoteUse::Fetched(fetch)),
                ..
            } => Some(fetch),
            _ => None,
        }
    }

    pub fn events(&self) -> &[Event] {
        match self {
            Record::Command { events, .. }
            | Record::Price { events, .. }
            | Record::Expired { events } => events,
            Record::Quote(_) | Record::Registered => &[],
        }
    }
}

/// A stored row of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// The global order of the log.
    pub seq: i64,
    pub ts_ms: i64,
    /// The instance that wrote it.
    pub server: String,
    pub user: Option<UserId>,
    /// The `transactionNum` of the step: the client's transaction number,
    /// or the row's `seq` when the command came without one.
    pub txn: i64,
    pub record: Record,
}

/// A page of a trader's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    /// The log rows the page was read from, newest first (quote fetches
    /// included), for a reader that wants more of them than a line holds.
    pub rows: Vec<LogRow>,
    /// Pass as `before_seq` for the next (older) page; `None` on the last.
    pub next_before: Option<i64>,
}

impl HistoryPage {
    /// The page made of `rows`, newest first, read with one row more than
    /// `limit` to tell whether an older page follows.
    pub(crate) fn of(mut rows: Vec<LogRow>, limit: usize) -> HistoryPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        HistoryPage {
            next_before: rows.last().filter(|_| more).map(|row| row.seq),
            items: rows.iter().filter_map(LogRow::history_item).collect(),
            rows,
        }
    }
}

/// One line of a trader's history, derived from a log row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub transaction_num: i64,
    pub at_ms: i64,
    /// The command, or "TRIGGER" for triggers fired by a new price,
    /// "REGISTER" for a registration, "EXPIRY" for orders the expiry task
    /// released.
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<Symbol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// "ok", or the refusal's code.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl LogRow {
    /// The history line for this row, if it belongs in a trader's history.
    pub fn history_item(&self) -> Option<HistoryItem> {
        let item =
            |command: String, symbol, amount, outcome: &Result<Reply, Rejection>| HistoryItem {
                transaction_num: self.txn,
                at_ms: self.ts_ms,
                command,
                symbol,
                amount,
                outcome: match outcome {
                    Ok(_) => "ok".to_owned(),
                    Err(r) => r.code.as_str().to_owned(),
                },
                message: outcome.as_ref().err().map(|r| r.message.clone()),
            };
        match &self.record {
            Record::Command {
                request, outcome, ..
            } => Some(item(
                request.name.as_str().to_owned(),
                request.symbol,
                request.amount.clone(),
                outcome,
            )),
            Record::Price { symbol, price, .. } => Some(item(
                "TRIGGER".to_owned(),
                Some(*symbol),
                Some(price.to_string()),
                &Ok(Reply::DumpLog(engine::Empty {})),
            )),
            Record::Registered => Some(item(
                "REGISTER".to_owned(),
                None,
                None,
                &Ok(Reply::DumpLog(engine::Empty {})),
            )),
            Record::Expired { events } => Some(item(
                "EXPIRY".to_owned(),
                events.iter().find_map(|event| match event.kind {
                    EventKind::BuyExpired { symbol, .. }
                    | EventKind::SellExpired { symbol, .. } => Some(symbol),
                    _ => None,
                }),
                None,
                &Ok(Reply::DumpLog(engine::Empty {})),
            )),
            Record::Quote(_) => None,
        }
    }

    /// The command name of a command row.
    pub fn command_name(&self) -> Option<CommandName> {
        match &self.record {
            Record::Command { request, .. } => Some(request.name),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{FundsAction, RejectCode};

    fn sample() -> Record {
        Record::Command {
            request: CommandRequest::new(
                CommandName::Buy,
                Some("u1"),
                Some("abc"),
                Some("100.00"),
                None,
            )
            .unwrap(),
            quote: Some(QuoteUse::Fetched(QuoteFetch {
                symbol: Symbol::parse("ABC").unwrap(),
                price: Money::from_cents(5817),
                user: "u1".into(),
                quote_server_time_ms: 1_330_546_050_315,
                cryptokey: "Zcw=".into(),
            })),
            outcome: Err(Rejection::new(RejectCode::InsufficientFunds, "no")),
            balance: Some(Balance {
                cash: Money::from_cents(1),
                reserved_cash: Money::ZERO,
            }),
            events: vec![Event {
                txn: 4,
                kind: EventKind::Funds {
                    action: FundsAction::Add,
                    amount: Money::from_cents(3),
                },
            }],
        }
    }

    #[test]
    fn round_trips_with_a_version_byte() {
        let bytes = sample().encode();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(Record::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        assert!(matches!(Record::decode(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            Record::decode(&[9, 1, 2]),
            Err(DecodeError::UnknownVersion(9))
        ));
        assert!(matches!(
            Record::decode(&[FORMAT_V1, 200, 200]),
            Err(DecodeError::Corrupt(_))
        ));
    }
}
