//! The audit: the stored state must be what the audit log says. Every row
//! is replayed through the engine with the time, transaction number and
//! price it recorded; each recorded outcome and event list must come out
//! the same, and so must every user's final account. This is possible
//! because the engine is a pure function of (state, command, time, price),
//! and every one of those is in the row.
//!
//! A refusal is compared by its code, not its sentence: the wording is the
//! version's (money shown in dollars, say), and a log written by an older
//! version must still verify.

use std::collections::BTreeMap;
use std::fmt::Debug;

use engine::{Account, Context, RejectCode, Rejection, Reply, UserId, execute};

use crate::StoreError;
use crate::backend::Reads;
use crate::record::{LogRow, QuoteUse, Record};

/// Rows and accounts read per query.
const PAGE: usize = 5_000;

/// Replays the whole log that `reader` holds and compares every stored
/// account with the replay. The store may keep running meanwhile: rows
/// and accounts written after the audit started can show as differences.
pub async fn audit(reader: &impl Reads) -> Result<AuditReport, StoreError> {
    let mut auditor = Auditor::default();
    let mut after = 0;
    loop {
        let page = reader.log_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            auditor.row(row);
        }
    }
    let mut after_user: Option<UserId> = None;
    loop {
        let page = reader.accounts_page(after_user.as_ref(), PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after_user = Some(last.clone());
        for (user, stored) in &page {
            auditor.stored(user, &stored.account);
        }
    }
    Ok(auditor.finish())
}

/// Replays rows and collects every way the stored data disagrees with them.
#[derive(Default)]
pub struct Auditor {
    accounts: BTreeMap<UserId, Option<Account>>,
    compared: usize,
    rows: usize,
    differences: Vec<String>,
}

/// What an audit found.
#[derive(Debug)]
pub struct AuditReport {
    /// Log rows replayed.
    pub rows: usize,
    /// Stored accounts compared.
    pub accounts: usize,
    /// Each disagreement, in a sentence; none when the store is faithful.
    pub differences: Vec<String>,
}

impl Auditor {
    /// Replays one row; rows must come in log order.
    pub fn row(&mut self, row: &LogRow) {
        self.rows += 1;
        let Some(user) = &row.user else { return };
        let account = self.accounts.entry(user.clone()).or_default();
        let mut events = Vec::new();
        let where_ = |what: &str| {
            format!(
                "row {} (user {user}, transaction {}, {what})",
                row.seq, row.txn
            )
        };
        match &row.record {
            Record::Command {
                request,
                quote,
                outcome,
                events: recorded,
                ..
            } => {
                let replayed = match request.command() {
                    Err(rejection) => Err(rejection),
                    Ok(command) => {
                        let ctx = Context {
                            now_ms: row.ts_ms,
                            txn: row.txn,
                            price: quote.as_ref().map(QuoteUse::price),
                        };
                        if command.price_symbol().is_some() && ctx.price.is_none() {
                            self.differences.push(format!(
                                "{}: no price is recorded",
                                where_(request.name.as_str())
                            ));
                            return;
                        }
                        execute(account, &command, &ctx, &mut events)
                    }
                };
                let place = where_(request.name.as_str());
                compare(
                    &mut self.differences,
                    &place,
                    "outcome",
                    &decided(outcome),
                    &decided(&replayed),
                );
                compare(&mut self.differences, &place, "events", recorded, &events);
            }
            Record::Price {
                symbol,
                price,
                events: recorded,
            } => {
                match account.as_mut() {
                    Some(account) => {
                        account.on_price(*symbol, *price, row.ts_ms, &mut events);
                    }
                    None => self.differences.push(format!(
                        "{}: a trigger fired for a user who does not exist",
                        where_("TRIGGER")
                    )),
                }
                compare(
                    &mut self.differences,
                    &where_("TRIGGER"),
                    "events",
                    recorded,
                    &events,
                );
            }
            Record::Expired { events: recorded } => {
                match account.as_mut() {
                    Some(account) => account.expire(row.ts_ms, &mut events),
                    None => self.differences.push(format!(
                        "{}: an order expired for a user who does not exist",
                        where_("EXPIRY")
                    )),
                }
                compare(
                    &mut self.differences,
                    &where_("EXPIRY"),
                    "events",
                    recorded,
                    &events,
                );
            }
            Record::Registered => match account {
                Some(_) => self.differences.push(format!(
                    "{}: a registration of a user who already exists",
                    where_("REGISTER")
                )),
                None => *account = Some(Account::default()),
            },
            Record::Quote(_) => {}
        }
    }

    /// Compares one stored account with the replay.
    pub fn stored(&mut self, user: &UserId, stored: &Account) {
        self.compared += 1;
        match self.accounts.remove(user).flatten() {
            None => self.differences.push(format!(
                "user {user}: an account is stored, but the log never created it"
            )),
            Some(replayed) => {
                let (s, r) = (stored.summary(0), replayed.summary(0));
                let place = format!("user {user}");
                compare(&mut self.differences, &place, "cash", &s.cash, &r.cash);
                compare(
                    &mut self.differences,
                    &place,
                    "reserved cash",
                    &s.reserved_cash,
                    &r.reserved_cash,
                );
                compare(
                    &mut self.differences,
                    &place,
                    "holdings",
                    &s.holdings,
                    &r.holdings,
                );
                compare(
                    &mut self.differences,
                    &place,
                    "pending buys",
                    &s.pending_buys,
                    &r.pending_buys,
                );
                compare(
                    &mut self.differences,
                    &place,
                    "pending sells",
                    &s.pending_sells,
                    &r.pending_sells,
                );
                compare(
                    &mut self.differences,
                    &place,
                    "buy triggers",
                    &s.buy_triggers,
                    &r.buy_triggers,
                );
                compare(
                    &mut self.differences,
                    &place,
                    "sell triggers",
                    &s.sell_triggers,
                    &r.sell_triggers,
                );
                // An account stored before cost records existed reads with
                // none, so an audit of older data names them here.
                compare(
                    &mut self.differences,
                    &place,
                    "cost records",
                    stored.costs(),
                    replayed.costs(),
                );
                if stored != &replayed && s == r && stored.costs() == replayed.costs() {
                    self.differences.push(format!(
                        "{place}: the stored account differs from the log's in its details"
                    ));
                }
            }
        }
    }

    pub fn finish(mut self) -> AuditReport {
        for (user, account) in &self.accounts {
            if account.is_some() {
                self.differences.push(format!(
                    "user {user}: the log creates this account, but none is stored"
                ));
            }
        }
        AuditReport {
            rows: self.rows,
            accounts: self.compared,
            differences: self.differences,
        }
    }
}

/// What an outcome decided: the reply in full, or the refusal's code (its
/// sentence is wording; see the module's header).
fn decided(outcome: &Result<Reply, Rejection>) -> Result<&Reply, RejectCode> {
    outcome.as_ref().map_err(|rejection| rejection.code)
}

fn compare<T: PartialEq + Debug>(
    differences: &mut Vec<String>,
    place: &str,
    what: &str,
    stored: &T,
    replayed: &T,
) {
    if stored != replayed {
        differences.push(format!(
            "{place}: {what} stored {stored:?}, the log gives {replayed:?}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use engine::{CommandName, CommandRequest};

    use super::*;

    fn user() -> UserId {
        UserId::parse("u1").unwrap()
    }

    /// Runs `requests` through the engine the way the store does and
    /// returns the rows and the resulting account.
    fn history(amounts: &[&str]) -> (Vec<LogRow>, Account) {
        let mut account = None;
        let rows = amounts
            .iter()
            .enumerate()
            .map(|(i, amount)| {
                let request =
                    CommandRequest::new(CommandName::Add, Some("u1"), None, Some(amount), None)
                        .unwrap();
                let ctx = Context {
                    now_ms: 1_000 + i as i64,
                    txn: i as i64 + 1,
                    price: None,
                };
                let mut events = Vec::new();
                let outcome = match request.command() {
                    Ok(command) => execute(&mut account, &command, &ctx, &mut events),
                    Err(rejection) => Err(rejection),
                };
                LogRow {
                    seq: i as i64 + 1,
                    ts_ms: ctx.now_ms,
                    server: "t".into(),
                    user: Some(user()),
                    txn: ctx.txn,
                    record: Record::Command {
                        request,
                        quote: None,
                        outcome,
                        balance: None,
                        events,
                    },
                }
            })
            .collect();
        (rows, account.unwrap())
    }

    fn audit(rows: &[LogRow], stored: Option<&Account>) -> AuditReport {
        let mut auditor = Auditor::default();
        rows.iter().for_each(|row| auditor.row(row));
        if let Some(stored) = stored {
            auditor.stored(&user(), stored);
        }
        auditor.finish()
    }

    #[test]
    fn a_faithful_store_passes() {
        let (rows, account) = history(&["10.00", "-1", "5.50"]);
        let report = audit(&rows, Some(&account));
        assert!(report.differences.is_empty(), "{:?}", report.differences);
        assert_eq!((report.rows, report.accounts), (3, 1));
    }

    #[test]
    fn a_tampered_balance_is_caught() {
        let (rows, _) = history(&["10.00"]);
        let (_, a_cent_richer) = history(&["10.01"]);
        let report = audit(&rows, Some(&a_cent_richer));
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(
            report.differences[0].contains("cash stored Money(1001), the log gives Money(1000)"),
            "{:?}",
            report.differences
        );
    }

    #[test]
    fn a_tampered_log_is_caught() {
        let (mut rows, account) = history(&["10.00", "5.00"]);
        if let Record::Command { outcome, .. } = &mut rows[1].record {
            *outcome = Err(engine::Rejection::new(
                engine::RejectCode::InvalidAmount,
                "forged",
            ));
        }
        let report = audit(&rows, Some(&account));
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.starts_with("row 2 (user u1, transaction 2, ADD): outcome"))
        );
    }

    #[test]
    fn a_refusal_worded_by_another_version_still_verifies() {
        let (mut rows, account) = history(&["10.00", "-1", "5.50"]);
        let Record::Command { outcome, .. } = &mut rows[1].record else {
            unreachable!()
        };
        let code = outcome.as_ref().unwrap_err().code;
        *outcome = Err(engine::Rejection::new(code, "older wording"));
        let report = audit(&rows, Some(&account));
        assert!(report.differences.is_empty(), "{:?}", report.differences);
    }

    fn registration(seq: i64) -> LogRow {
        LogRow {
            seq,
            ts_ms: 500,
            server: "t".into(),
            user: Some(user()),
            txn: 900,
            record: Record::Registered,
        }
    }

    #[test]
    fn a_registration_creates_the_account_it_stores() {
        let report = audit(&[registration(1)], Some(&Account::default()));
        assert!(report.differences.is_empty(), "{:?}", report.differences);
        // Without its row, the registered account is one the log never made.
        let report = audit(&[], Some(&Account::default()));
        assert!(report.differences[0].contains("the log never created it"));
        // A second registration of one user is not something the store does.
        let (mut rows, account) = history(&["10.00"]);
        rows.push(registration(2));
        let report = audit(&rows, Some(&account));
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.contains("a registration of a user who already exists")),
            "{:?}",
            report.differences
        );
    }

    #[test]
    fn an_expiry_with_nothing_due_is_caught() {
        // A forged refund: the account had no pending order to expire.
        let (mut rows, account) = history(&["10.00"]);
        let refund = engine::Event {
            txn: 1,
            kind: engine::EventKind::Funds {
                action: engine::FundsAction::Add,
                amount: engine::Money::from_cents(500),
            },
        };
        rows.push(LogRow {
            seq: 2,
            ts_ms: 90_000,
            server: "t".into(),
            user: Some(user()),
            txn: 1,
            record: Record::Expired {
                events: vec![refund],
            },
        });
        let report = audit(&rows, Some(&account));
        assert!(
            report
                .differences
                .iter()
                .any(|d| d.starts_with("row 2 (user u1, transaction 1, EXPIRY): events")),
            "{:?}",
            report.differences
        );
        let report = audit(&rows[1..], None);
        assert!(
            report.differences[0].contains("an order expired for a user who does not exist"),
            "{:?}",
            report.differences
        );
    }

    #[test]
    fn missing_and_unexpected_accounts_are_caught() {
        let (rows, account) = history(&["10.00"]);
        assert_eq!(
            audit(&rows, None).differences.len(),
            1,
            "created by the log, not stored"
        );
        let report = audit(&[], Some(&account));
        assert!(report.differences[0].contains("the log never created it"));
    }
}
