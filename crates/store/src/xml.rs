//! The audit log as XML, in the SENG 468 log format (`schema/logfile.xsd` in
//! this crate): one row renders to its `userCommand`, the quote it used, its
//! account transactions and system events, or its `errorEvent`.

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
        Record::Price { events, .. } | Record::Expired { events } => {
            render_events(out, &common, user, events)
        }
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
            field_money(out, "funds", funds);
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
                    field_money(out, "funds", amount);
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
        field_money(out, "price", fetch.price);
        field(out, "stockSymbol", fetch.symbol.as_str());
        field(out, "username", &escape(&fetch.user));
        field_int(out, "quoteServerTime", fetch.quote_server_time_ms);
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

// The writers below append with `push_str` and format numbers by hand:
// through `write!`, formatting was most of a DUMPLOG's time (the
// formatter's machinery for every tag and number of every entry).

fn entry(
    out: &mut String,
    tag: &str,
    common: &Common<'_>,
    txn: i64,
    body: impl FnOnce(&mut String),
) {
    out.push_str("\t<");
    out.push_str(tag);
    out.push_str(">\n");
    field_int(out, "timestamp", common.ts_ms);
    field(out, "server", &escape(common.server));
    // The schema wants a positive transaction number on every entry.
    field_int(out, "transactionNum", txn.max(1));
    body(out);
    out.push_str("\t</");
    out.push_str(tag);
    out.push_str(">\n");
}

fn open(out: &mut String, tag: &str) {
    out.push_str("\t\t<");
    out.push_str(tag);
    out.push('>');
}

fn close(out: &mut String, tag: &str) {
    out.push_str("</");
    out.push_str(tag);
    out.push_str(">\n");
}

/// `value` must already be escaped (or need no escaping).
fn field(out: &mut String, tag: &str, value: &str) {
    open(out, tag);
    out.push_str(value);
    close(out, tag);
}

fn field_int(out: &mut String, tag: &str, value: i64) {
    open(out, tag);
    if value < 0 {
        out.push('-');
    }
    push_digits(out, value.unsigned_abs());
    close(out, tag);
}

/// Money as `Money`'s `Display` shows it: dollars, a point, two digits.
fn field_money(out: &mut String, tag: &str, value: Money) {
    open(out, tag);
    let cents = value.cents();
    if cents < 0 {
        out.push('-');
    }
    let abs = cents.unsigned_abs();
    push_digits(out, abs / 100);
    out.push('.');
    let rest = (abs % 100) as u8;
    out.push(char::from(b'0' + rest / 10));
    out.push(char::from(b'0' + rest % 10));
    close(out, tag);
}

fn push_digits(out: &mut String, mut n: u64) {
    let mut buffer = [0u8; 20];
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buffer[at..]).expect("ASCII digits"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_render_as_their_display() {
        for cents in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            12_345,
            -1,
            -99,
            -100,
            -12_345,
            i64::MAX,
            i64::MIN + 1,
        ] {
            let money = Money::from_cents(cents);
            let mut out = String::new();
            field_money(&mut out, "m", money);
            assert_eq!(out, format!("\t\t<m>{money}</m>\n"));
            let mut out = String::new();
            field_int(&mut out, "n", cents);
            assert_eq!(out, format!("\t\t<n>{cents}</n>\n"));
        }
    }
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
