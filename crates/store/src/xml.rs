//! The audit log as XML, in the SENG 468 log format (`schema/logfile.xsd` in
//! this crate): one row renders to its `userCommand`, the quote it used, its
//! account transactions and system events, or its `errorEvent`.

use std::fmt::Write;

use engine::{CommandName, Event, EventKind, Money, Rejection, Symbol};
use quick_xml::escape::escape;

use crate::record::{LogRow, QuoteFetch, QuoteUse, Record};

pub const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<log>\n";
pub const FOOTER: &str = "</log>\n";

/// The fields every entry starts with.
struct Common<'a> {
    ts_ms: i64,
    server: &'a str,
}

/// Appends the XML entries of `row` to `out`.
pub fn render_row(row: &LogRow, out: &mut String) {
    let common = Common {
        ts_ms: row.ts_ms,
        server: &row.server,
    };
    let user = row.user.as_ref().map(|u| u.as_str());
    match &row.record {
        Record::Command {
            request,
            quote,
            outcome,
            events,
            ..
        } => {
            // A refused amount is shown as sent when it is a decimal at all.
            let funds = request
                .amount
                .as_deref()
                .and_then(|a| Money::parse_decimal(a).ok());
            let args = Args {
                command: request.name,
                user,
                symbol: request.symbol,
                filename: request.filename.as_deref(),
                funds,
            };
            entry(out, "userCommand", &common, row.txn, |out| args.write(out));
            match quote {
                Some(QuoteUse::Fetched(fetch)) => quote_server(out, &common, row.txn, fetch),
                Some(QuoteUse::Cached { symbol, price }) => {
                    let cached = Args {
                        command: request.name,
                        user,
                        symbol: Some(*symbol),
                        filename: None,
                        funds: Some(*price),
                    };
                    entry(out, "systemEvent", &common, row.txn, |out| {
                        cached.write(out)
                    });
                }
                None => {}
            }
            render_events(out, &common, user, events);
            if let Err(rejection) = outcome {
                error_event(out, &common, row.txn, &args, rejection);
            }
        }
        Record::Price { events, .. } => render_events(out, &common, user, events),
        Record::Quote(fetch) => quote_server(out, &common, row.txn, fetch),
        // The course's format has no entry for a registration (no command,
        // no money moved): it is in the log for the audit, not the dump.
        Record::Registered => {}
    }
}

/// The optional fields shared by `userCommand`, `systemEvent` and
/// `errorEvent`.
struct Args<'a> {
    command: CommandName,
    user: Option<&'a str>,
    symbol: Option<Symbol>,
    filename: Option<&'a str>,
    funds: Option<Money>,
}

impl Args<'_> {
    fn write(&self, out: &mut String) {
        field(out, "command", self.command.as_str());
        if let Some(user) = self.user {
            field(out, "username", user);
        }
        if let Some(symbol) = self.symbol {
            field(out, "stockSymbol", symbol.as_str());
        }
        if let Some(filename) = self.filename {
            field(out, "filename", &escape(filename));
        }
        if let Some(funds) = self.funds {
            field_display(out, "funds", funds);
        }
    }
}

fn render_events(out: &mut String, common: &Common<'_>, user: Option<&str>, events: &[Event]) {
    for event in events {
        let (command, symbol, funds) = match event.kind {
            EventKind::Funds { action, amount } => {
                entry(out, "accountTransaction", common, event.txn, |out| {
                    field(out, "action", action.as_str());
                    field(out, "username", user.unwrap_or_default());
                    field_display(out, "funds", amount);
                });
                continue;
            }
            EventKind::BuyExpired { symbol, refund, .. } => (CommandName::Buy, symbol, refund),
            EventKind::SellExpired {
                symbol,
                shares,
                price,
            } => (
                CommandName::Sell,
                symbol,
                price.times(shares).expect("bounded when reserved"),
            ),
            EventKind::BuyTriggerExecuted { symbol, cost, .. } => {
                (CommandName::SetBuyTrigger, symbol, cost)
            }
            EventKind::BuyTriggerUnfilled { symbol, refund, .. } => {
                (CommandName::SetBuyTrigger, symbol, refund)
            }
            EventKind::SellTriggerExecuted {
                symbol, proceeds, ..
            } => (CommandName::SetSellTrigger, symbol, proceeds),
        };
        let args = Args {
            command,
            user,
            symbol: Some(symbol),
            filename: None,
            funds: Some(funds),
        };
        entry(out, "systemEvent", common, event.txn, |out| args.write(out));
    }
}

fn quote_server(out: &mut String, common: &Common<'_>, txn: i64, fetch: &QuoteFetch) {
    entry(out, "quoteServer", common, txn, |out| {
        field_display(out, "price", fetch.price);
        field(out, "stockSymbol", fetch.symbol.as_str());
        field(out, "username", &escape(&fetch.user));
        field_display(out, "quoteServerTime", fetch.quote_server_time_ms);
        field(out, "cryptokey", &escape(&fetch.cryptokey));
    });
}

fn error_event(
    out: &mut String,
    common: &Common<'_>,
    txn: i64,
    args: &Args<'_>,
    rejection: &Rejection,
) {
    entry(out, "errorEvent", common, txn, |out| {
        args.write(out);
        let message = format!("{}: {}", rejection.code, rejection.message);
        field(out, "errorMessage", &escape(&message));
    });
}

fn entry(
    out: &mut String,
    tag: &str,
    common: &Common<'_>,
    txn: i64,
    body: impl FnOnce(&mut String),
) {
    let _ = writeln!(out, "\t<{tag}>");
    field_display(out, "timestamp", common.ts_ms);
    field(out, "server", &escape(common.server));
    // The schema wants a positive transaction number on every entry.
    field_display(out, "transactionNum", txn.max(1));
    body(out);
    let _ = writeln!(out, "\t</{tag}>");
}

/// `value` must already be escaped (or need no escaping).
fn field(out: &mut String, tag: &str, value: &str) {
    let _ = writeln!(out, "\t\t<{tag}>{value}</{tag}>");
}

fn field_display(out: &mut String, tag: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "\t\t<{tag}>{value}</{tag}>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Balance;
    use engine::{CommandRequest, FundsAction, RejectCode, Reply, UserId};

    fn row(record: Record) -> String {
        let mut out = String::new();
        render_row(
            &LogRow {
                seq: 7,
                ts_ms: 1_700_000_000_000,
                server: "web<1>".into(),
                user: Some(UserId::parse("u1").unwrap()),
                txn: 3,
                record,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn a_refused_add_keeps_its_amount_and_says_why() {
        let request =
            CommandRequest::new(CommandName::Add, Some("u1"), None, Some("-73280.58"), None)
                .unwrap();
        let xml = row(Record::Command {
            request,
            quote: None,
            outcome: Err(Rejection::new(
                RejectCode::InvalidAmount,
                "it must be > 0 & <",
            )),
            balance: None,
            events: vec![],
        });
        assert!(xml.contains("<userCommand>"));
        assert!(xml.contains("<funds>-73280.58</funds>"));
        assert!(xml.contains("<server>web&lt;1&gt;</server>"));
        assert!(
            xml.contains(
                "<errorMessage>invalid_amount: it must be &gt; 0 &amp; &lt;</errorMessage>"
            )
        );
        assert_eq!(xml.matches("<transactionNum>3</transactionNum>").count(), 2);
    }

    #[test]
    fn a_buy_shows_its_quote_and_cash_moved() {
        let request =
            CommandRequest::new(CommandName::Buy, Some("u1"), Some("ABC"), Some("100"), None)
                .unwrap();
        let symbol = Symbol::parse("ABC").unwrap();
        let xml = row(Record::Command {
            request,
            quote: Some(QuoteUse::Cached {
                symbol,
                price: Money::from_cents(2500),
            }),
            outcome: Ok(Reply::DumpLog(engine::Empty {})),
            balance: Some(Balance {
                cash: Money::ZERO,
                reserved_cash: Money::ZERO,
            }),
            events: vec![Event {
                txn: 3,
                kind: EventKind::Funds {
                    action: FundsAction::Remove,
                    amount: Money::from_cents(10_000),
                },
            }],
        });
        let order: Vec<&str> = ["<userCommand>", "<systemEvent>", "<accountTransaction>"]
            .iter()
            .map(|tag| &xml[xml.find(tag).unwrap()..])
            .collect();
        assert!(
            order.windows(2).all(|w| w[0].len() > w[1].len()),
            "entries in order:\n{xml}"
        );
        assert!(xml.contains("<funds>100.00</funds>"));
        assert!(xml.contains("<funds>25.00</funds>"));
        assert!(xml.contains("<action>remove</action>"));
        assert!(!xml.contains("errorEvent"));
    }

    #[test]
    fn a_registration_renders_no_entry() {
        assert_eq!(row(Record::Registered), "");
    }
}
