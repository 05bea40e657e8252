//! How values are laid out in columns, shared by every back end so that a
//! row means the same thing whichever database holds it.

use engine::{Account, TriggerSide, UserId};

use crate::StoreError;
use crate::batch::GLOBAL_USER;
use crate::notification::{Notification, NotificationKind};
use crate::record::{LogRow, Record};

/// An account's `state` column. No version byte (unlike log records): an
/// account is rewritten on every change, so a format change migrates it on
/// its next write, and the log can rebuild it anyway.
pub(crate) fn encode_account(account: &Account) -> Vec<u8> {
    postcard::to_allocvec(account).expect("accounts always encode")
}

pub(crate) fn decode_account(user: &UserId, state: &[u8]) -> Result<Account, StoreError> {
    let corrupt = |e: postcard::Error| StoreError::Corrupt(format!("account {user}: {e}"));
    match postcard::from_bytes(state) {
        Err(postcard::Error::DeserializeUnexpectedEnd) => decode_original_account(state)
            .ok_or_else(|| corrupt(postcard::Error::DeserializeUnexpectedEnd)),
        decoded => decoded.map_err(corrupt),
    }
}

/// How many bytes the fields of the first account layout take when they
/// are all empty: cash, holdings, pending buys, pending sells, buy
/// triggers, sell triggers, one byte each.
const ORIGINAL_EMPTY_LEN: usize = 6;

/// An account stored before fields were appended to [`Account`] (the cost
/// records were the first). Postcard writes a struct as its fields one
/// after another, and an empty field as zero bytes, so such an account is
/// the current encoding without the appended fields' bytes: appending
/// those of their empty values (taken from the encoding of an empty
/// account) reads it with nothing bought and nothing realized. The whole
/// input must be used, so a truncated account is still corrupt.
fn decode_original_account(state: &[u8]) -> Option<Account> {
    let empty = encode_account(&Account::default());
    let mut padded = state.to_vec();
    padded.extend_from_slice(empty.get(ORIGINAL_EMPTY_LEN..)?);
    match postcard::take_from_bytes::<Account>(&padded) {
        Ok((account, [])) => Some(account),
        _ => None,
    }
}

/// The `user_id` column: global rows (the global DUMPLOG, system quote
/// fetches) are stored under [`GLOBAL_USER`].
pub(crate) fn user_column(user: Option<&UserId>) -> &str {
    user.map_or(GLOBAL_USER, UserId::as_str)
}

/// A `LIMIT` parameter: both databases take a signed 64-bit integer.
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(crate) fn parse_user(text: &str) -> Result<UserId, StoreError> {
    UserId::parse(text).map_err(|_| StoreError::Corrupt(format!("stored user id {text:?}")))
}

/// The `side` column of `armed_triggers`.
pub(crate) fn side_code(side: TriggerSide) -> i16 {
    match side {
        TriggerSide::Buy => 0,
        TriggerSide::Sell => 1,
    }
}

/// The columns of one `log` row, as read.
pub(crate) struct LogColumns<'a> {
    pub seq: i64,
    pub ts_ms: i64,
    pub server: String,
    pub user: &'a str,
    pub txn: i64,
    pub body: &'a [u8],
}

impl LogColumns<'_> {
    pub fn decode(self) -> Result<LogRow, StoreError> {
        let user = if self.user == GLOBAL_USER {
            None
        } else {
            Some(parse_user(self.user)?)
        };
        let record = Record::decode(self.body)
            .map_err(|e| StoreError::Corrupt(format!("log row {}: {e}", self.seq)))?;
        Ok(LogRow {
            seq: self.seq,
            ts_ms: self.ts_ms,
            server: self.server,
            user,
            txn: self.txn,
            record,
        })
    }
}

/// The columns of one `notifications` row, as read.
pub(crate) struct NotificationColumns<'a> {
    pub id: i64,
    pub user: &'a str,
    pub created_ms: i64,
    pub kind: &'a str,
    pub message: String,
    pub txn: i64,
    pub read: bool,
}

impl NotificationColumns<'_> {
    pub fn decode(self) -> Result<Notification, StoreError> {
        let kind = NotificationKind::parse(self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "notification {} has an unknown kind {:?}",
                self.id, self.kind
            ))
        })?;
        Ok(Notification {
            id: self.id,
            user: parse_user(self.user)?,
            created_ms: self.created_ms,
            kind,
            message: self.message,
            txn: self.txn,
            read: self.read,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use engine::{BuyTrigger, Command, Context, Money, PendingOrder, SellTrigger, Symbol};
    use serde::Serialize;

    use super::*;

    /// The account layout before any field was appended.
    #[derive(Serialize)]
    struct OriginalAccount {
        cash: Money,
        holdings: BTreeMap<Symbol, i64>,
        pending_buys: Vec<PendingOrder>,
        pending_sells: Vec<PendingOrder>,
        buy_triggers: BTreeMap<Symbol, BuyTrigger>,
        sell_triggers: BTreeMap<Symbol, SellTrigger>,
    }

    fn user() -> UserId {
        UserId::parse("u1").unwrap()
    }

    #[test]
    fn an_account_stored_before_cost_records_reads_with_none() {
        let abc = Symbol::parse("ABC").unwrap();
        let original = OriginalAccount {
            cash: Money::from_cents(12_345),
            holdings: BTreeMap::from([(abc, 7)]),
            pending_buys: Vec::new(),
            pending_sells: Vec::new(),
            buy_triggers: BTreeMap::new(),
            sell_triggers: BTreeMap::new(),
        };
        let bytes = postcard::to_allocvec(&original).unwrap();
        let account = decode_account(&user(), &bytes).unwrap();
        assert_eq!(account.cash(), Money::from_cents(12_345));
        assert_eq!(account.shares(abc), 7);
        assert_eq!(account.costs().basis(abc), Money::ZERO);
        assert_eq!(account.costs().realized_gain(), Money::ZERO);
        // A truncated account is still refused.
        assert!(decode_account(&user(), &bytes[..bytes.len() - 2]).is_err());
    }

    #[test]
    fn cost_records_round_trip() {
        let abc = Symbol::parse("ABC").unwrap();
        let mut account = None;
        let mut events = Vec::new();
        let mut run = |command: Command, price: i64| {
            let ctx = Context {
                now_ms: 0,
                txn: 1,
                price: Some(Money::from_cents(price)),
            };
            engine::execute(&mut account, &command, &ctx, &mut events).unwrap();
        };
        run(
            Command::Add {
                amount: Money::from_cents(100_000),
            },
            0,
        );
        run(
            Command::Buy {
                symbol: abc,
                amount: Money::from_cents(1_000),
            },
            333,
        );
        run(Command::CommitBuy, 0);
        let account = account.unwrap();
        assert_eq!(account.costs().basis(abc), Money::from_cents(999));
        let decoded = decode_account(&user(), &encode_account(&account)).unwrap();
        assert_eq!(decoded, account);
    }

    #[test]
    fn an_account_round_trips_with_what_last_expired() {
        let abc = Symbol::parse("ABC").unwrap();
        let mut account = None;
        let mut run = |command: Command, now_ms: i64| {
            let ctx = Context {
                now_ms,
                txn: now_ms,
                price: Some(Money::from_cents(1_000)),
            };
            engine::execute(&mut account, &command, &ctx, &mut Vec::new())
        };
        run(
            Command::Add {
                amount: Money::from_cents(100_000),
            },
            1,
        )
        .unwrap();
        let buy = Command::Buy {
            symbol: abc,
            amount: Money::from_cents(10_000),
        };
        run(buy, 2).unwrap();
        run(Command::CommitBuy, 60_003).unwrap_err();
        let account = account.unwrap();
        assert!(account.last_expired().buy.is_some());
        assert_eq!(
            decode_account(&user(), &encode_account(&account)).unwrap(),
            account
        );
    }
}
