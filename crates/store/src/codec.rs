//! How values are laid out in columns, shared by every back end so that a
//! row means the same thing whichever database holds it.

use engine::{Account, AccountV1, TriggerSide, UserId};

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

/// An account in the current shape, or in the shape stored before
/// [`Account::last_expired`] was appended (an old account gains it empty).
pub(crate) fn decode_account(user: &UserId, state: &[u8]) -> Result<Account, StoreError> {
    postcard::from_bytes(state)
        .or_else(|error| {
            postcard::from_bytes::<AccountV1>(state)
                .map(Account::from)
                .map_err(|_| error)
        })
        .map_err(|e| StoreError::Corrupt(format!("account {user}: {e}")))
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
    use super::*;
    use engine::{Command, Context, Money, Symbol};

    /// An account with a holding and a pending buy, which has expired
    /// when `expire`.
    fn account(expire: bool) -> Account {
        let mut account = None;
        let mut run = |command, now_ms, price| {
            let ctx = Context {
                now_ms,
                txn: now_ms,
                price: Some(Money::from_cents(price)),
            };
            engine::execute(&mut account, &command, &ctx, &mut Vec::new())
        };
        let symbol = Symbol::parse("ABC").unwrap();
        let amount = Money::from_cents(10_000);
        run(
            Command::Add {
                amount: Money::from_cents(100_000),
            },
            1,
            1,
        )
        .unwrap();
        run(Command::Buy { symbol, amount }, 2, 1_000).unwrap();
        run(Command::CommitBuy, 3, 1_000).unwrap();
        run(Command::Buy { symbol, amount }, 4, 1_000).unwrap();
        if expire {
            run(Command::CommitBuy, 60_004, 1_000).unwrap_err();
        }
        account.unwrap()
    }

    #[test]
    fn an_account_round_trips_with_what_last_expired() {
        let account = account(true);
        assert!(account.last_expired().buy.is_some());
        let user = UserId::parse("u1").unwrap();
        assert_eq!(
            decode_account(&user, &encode_account(&account)).unwrap(),
            account
        );
    }

    #[test]
    fn an_account_stored_before_last_expired_still_decodes() {
        let account = account(false);
        let mut old = encode_account(&account);
        // The old shape is the new one without its last field: the two
        // empty options (`None`, one byte each) that end the encoding.
        assert_eq!(old.split_off(old.len() - 2), [0, 0]);
        let user = UserId::parse("u1").unwrap();
        assert_eq!(decode_account(&user, &old).unwrap(), account);
        assert!(decode_account(&user, &old[..old.len() - 1]).is_err());
    }
}
