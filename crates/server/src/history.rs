//! A trader's history as people and spreadsheets read it, made from the
//! audit log's rows in one place for the history page, the dashboard's
//! recent activity and the CSV export: each command in words, its amount
//! as money (or marked when it was not one), what it filled (shares and
//! price, for commits and trigger executions) and the cash after it.

use std::fmt::Write as _;

use bytes::Bytes;
use engine::{CommandName, EventKind, Money, Rejection, Reply, Symbol, UserId};
use futures::Stream;
use store::{LogRow, Reader, Reads, Record, StoreError};

/// What a line is about, for the page's filter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ADD.
    Deposit,
    /// BUY, SELL, and their commits and cancels.
    Trade,
    /// Setting, arming and cancelling triggers, and their executions.
    Trigger,
    /// QUOTE.
    Quote,
    /// A summary, a log download, the registration.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Deposit,
        Kind::Trade,
        Kind::Trigger,
        Kind::Quote,
        Kind::Other,
    ];

    /// As in the filter's query string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Deposit => "deposit",
            Kind::Trade => "trade",
            Kind::Trigger => "trigger",
            Kind::Quote => "quote",
            Kind::Other => "other",
        }
    }

    /// As the filter's menu says it.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Deposit => "Deposits",
            Kind::Trade => "Buys and sells",
            Kind::Trigger => "Triggers",
            Kind::Quote => "Quotes",
            Kind::Other => "Other",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    fn of(name: CommandName) -> Kind {
        use CommandName::*;
        match name {
            Add => Kind::Deposit,
            Buy | CommitBuy | CancelBuy | Sell | CommitSell | CancelSell => Kind::Trade,
            SetBuyAmount | SetBuyTrigger | CancelSetBuy | SetSellAmount | SetSellTrigger
            | CancelSetSell => Kind::Trigger,
            Quote => Kind::Quote,
            DumpLog | DisplaySummary => Kind::Other,
        }
    }
}

/// A command in words.
fn words(name: CommandName) -> &'static str {
    use CommandName::*;
    match name {
        Add => "Add funds",
        Quote => "Quote",
        Buy => "Buy",
        CommitBuy => "Commit buy",
        CancelBuy => "Cancel buy",
        Sell => "Sell",
        CommitSell => "Commit sell",
        CancelSell => "Cancel sell",
        SetBuyAmount => "Set buy amount",
        SetBuyTrigger => "Set buy trigger",
        CancelSetBuy => "Cancel buy trigger",
        SetSellAmount => "Set sell amount",
        SetSellTrigger => "Set sell trigger",
        CancelSetSell => "Cancel sell trigger",
        DumpLog => "Download log",
        DisplaySummary => "Account summary",
    }
}

/// An amount as the trader sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Amount {
    /// It was an amount: shown normalised (`1000` is `$1,000.00`).
    Money(Money),
    /// It was not (`abc`, `1,000.50`, `-5`): shown as typed, marked.
    Unparsed(String),
}

impl Amount {
    fn of(text: &str) -> Amount {
        Money::parse_amount(text).map_or_else(|_| Amount::Unparsed(text.to_owned()), Amount::Money)
    }
}

/// Shares that changed hands, at their price.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    pub shares: i64,
    pub price: Money,
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The log row it comes from.
    pub seq: i64,
    pub at_ms: i64,
    /// The transaction number it is filed under: the command's, or for a
    /// trigger execution, that of the command that armed the trigger.
    pub txn: i64,
    /// The stable name a program reads (`COMMIT_BUY`,
    /// `BUY_TRIGGER_EXECUTED`).
    pub command: &'static str,
    /// What a person reads ("Commit buy").
    pub words: &'static str,
    pub kind: Kind,
    pub symbol: Option<Symbol>,
    pub amount: Option<Amount>,
    /// `None` when it was done.
    pub refusal: Option<Rejection>,
    pub fill: Option<Fill>,
    /// Cash after the step, where the log knows it (a command's row does;
    /// a trigger execution's does not).
    pub cash_after: Option<Money>,
}

impl Entry {
    /// `ok`, or the refusal's code.
    pub fn outcome(&self) -> &'static str {
        self.refusal.as_ref().map_or("ok", |r| r.code.as_str())
    }
}

/// The lines of one log row: one for a command or a registration, one per
/// trigger execution for a new price, none for a quote fetch.
pub fn entries(row: &LogRow) -> Vec<Entry> {
    let entry = |command, words, kind| Entry {
        seq: row.seq,
        at_ms: row.ts_ms,
        txn: row.txn,
        command,
        words,
        kind,
        symbol: None,
        amount: None,
        refusal: None,
        fill: None,
        cash_after: None,
    };
    match &row.record {
        Record::Command {
            request,
            outcome,
            balance,
            ..
        } => {
            let fill = match (request.name, outcome) {
                (CommandName::CommitBuy | CommandName::CommitSell, Ok(Reply::Settled(s))) => {
                    Some(Fill {
                        shares: s.shares,
                        price: s.price,
                    })
                }
                (_, Ok(Reply::TriggerArmed(armed))) => armed.executed.as_ref().map(|x| Fill {
                    shares: x.shares,
                    price: x.price,
                }),
                _ => None,
            };
            // A commit or cancel names no symbol; the order it settled does.
            let settled_symbol = match outcome {
                Ok(Reply::Settled(s)) => Some(s.symbol),
                _ => None,
            };
            vec![Entry {
                symbol: request.symbol.or(settled_symbol),
                amount: request.amount.as_deref().map(Amount::of),
                refusal: outcome.as_ref().err().cloned(),
                fill,
                cash_after: balance.map(|b| b.cash),
                ..entry(
                    request.name.as_str(),
                    words(request.name),
                    Kind::of(request.name),
                )
            }]
        }
        // A new price's trigger executions, and the orders the expiry task
        // released, are one line each, filed under the number of the
        // command that armed the trigger or placed the order.
        Record::Price { events, .. } | Record::Expired { events } => events
            .iter()
            .filter_map(|event| {
                let (command, words, kind, symbol, amount, fill) = match event.kind {
                    EventKind::BuyTriggerExecuted {
                        symbol,
                        shares,
                        price,
                        cost,
                    } => (
                        "BUY_TRIGGER_EXECUTED",
                        "Buy trigger executed",
                        Kind::Trigger,
                        symbol,
                        Some(cost),
                        Some(Fill { shares, price }),
                    ),
                    EventKind::SellTriggerExecuted {
                        symbol,
                        shares,
                        price,
                        proceeds,
                    } => (
                        "SELL_TRIGGER_EXECUTED",
                        "Sell trigger executed",
                        Kind::Trigger,
                        symbol,
                        Some(proceeds),
                        Some(Fill { shares, price }),
                    ),
                    EventKind::BuyTriggerUnfilled { symbol, refund, .. } => (
                        "BUY_TRIGGER_UNFILLED",
                        "Buy trigger could not buy",
                        Kind::Trigger,
                        symbol,
                        Some(refund),
                        None,
                    ),
                    EventKind::BuyExpired { symbol, refund, .. } => (
                        "BUY_EXPIRED",
                        "Buy expired",
                        Kind::Trade,
                        symbol,
                        Some(refund),
                        None,
                    ),
                    EventKind::SellExpired {
                        symbol,
                        shares,
                        price,
                    } => (
                        "SELL_EXPIRED",
                        "Sell expired",
                        Kind::Trade,
                        symbol,
                        price.times(shares),
                        None,
                    ),
                    // Cash movements are parts of a step, not lines of
                    // their own.
                    _ => return None,
                };
                Some(Entry {
                    txn: event.txn,
                    symbol: Some(symbol),
                    amount: amount.map(Amount::Money),
                    fill,
                    ..entry(command, words, kind)
                })
            })
            .collect(),
        Record::Registered => vec![entry("REGISTER", "Registered", Kind::Other)],
        Record::Quote(_) => Vec::new(),
    }
}

/// Which lines to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub kind: Option<Kind>,
    pub symbol: Option<Symbol>,
}

impl Filter {
    pub fn keeps(&self, entry: &Entry) -> bool {
        self.kind.is_none_or(|kind| entry.kind == kind)
            && self
                .symbol
                .is_none_or(|symbol| entry.symbol == Some(symbol))
    }
}

/// Some lines, newest first.
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next_before: Option<i64>,
}

/// Log rows read per query.
const ROWS_PER_READ: usize = 200;
/// The most rows one filtered page looks through before it stops (and
/// offers older entries): a filter that matches rarely must not read a
/// long log in one request.
const MAX_ROWS_SCANNED: usize = 5_000;

/// About `want` lines that `filter` keeps from `user`'s rows before row
/// `before` (from the newest when `None`), newest first.
pub async fn page(
    reader: &Reader,
    user: &UserId,
    filter: &Filter,
    before: Option<i64>,
    want: usize,
) -> Result<Page, StoreError> {
    let mut found = Vec::new();
    let mut cursor = before;
    let mut scanned = 0;
    // Unfiltered, `want` rows nearly always make the page; a filter that
    // skips rows reads on in larger steps.
    let mut batch = want.max(1);
    loop {
        let read = reader.history_page(user, cursor, batch).await?;
        batch = ROWS_PER_READ;
        for (i, row) in read.rows.iter().enumerate() {
            found.extend(entries(row).into_iter().filter(|e| filter.keeps(e)));
            scanned += 1;
            cursor = Some(row.seq);
            if found.len() >= want || scanned >= MAX_ROWS_SCANNED {
                // Older rows follow this one, unless it was the oldest.
                let oldest = read.next_before.is_none() && i + 1 == read.rows.len();
                return Ok(Page {
                    entries: found,
                    next_before: cursor.filter(|_| !oldest),
                });
            }
        }
        if read.next_before.is_none() {
            return Ok(Page {
                entries: found,
                next_before: None,
            });
        }
    }
}

/// The CSV export's header (SPEC 4b).
pub const CSV_HEADER: &str =
    "time,transaction_num,command,symbol,amount,outcome,shares,price,cash_after\r\n";

/// `user`'s whole history as CSV, newest first, made a few hundred rows
/// at a time as it is sent, so memory stays flat whatever its length.
pub fn csv(reader: Reader, user: UserId) -> impl Stream<Item = Result<Bytes, StoreError>> {
    // (the cursor, and whether the header and the last page have gone out)
    let start = (None, false, false);
    futures::stream::try_unfold(start, move |(before, started, done)| {
        let (reader, user) = (reader.clone(), user.clone());
        async move {
            if done {
                return Ok(None);
            }
            if !started {
                return Ok(Some((
                    Bytes::from_static(CSV_HEADER.as_bytes()),
                    (None, true, false),
                )));
            }
            let read = reader.history_page(&user, before, ROWS_PER_READ).await?;
            let mut text = String::new();
            for entry in read.rows.iter().flat_map(entries) {
                text.push_str(&csv_line(&entry));
            }
            let next = read.next_before;
            Ok(Some((Bytes::from(text), (next, true, next.is_none()))))
        }
    })
}

/// One CSV record: time (ISO 8601, UTC), transaction number, command,
/// symbol, amount (normalised when it parsed, as typed when not), outcome,
/// shares and price filled, cash after.
pub fn csv_line(entry: &Entry) -> String {
    let money = |m: Option<Money>| m.map(|m| m.to_string()).unwrap_or_default();
    let amount = match &entry.amount {
        Some(Amount::Money(m)) => m.to_string(),
        Some(Amount::Unparsed(text)) => text.clone(),
        None => String::new(),
    };
    let cells = [
        engine::clock::iso8601(entry.at_ms),
        entry.txn.to_string(),
        entry.command.to_owned(),
        entry.symbol.map(|s| s.to_string()).unwrap_or_default(),
        amount,
        entry.outcome().to_owned(),
        entry.fill.map(|f| f.shares.to_string()).unwrap_or_default(),
        money(entry.fill.map(|f| f.price)),
        money(entry.cash_after),
    ];
    let mut line = String::new();
    for (i, text) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        write_cell(&mut line, text);
    }
    line.push_str("\r\n");
    line
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line
/// break. Text a spreadsheet would run as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or carriage return: only an amount as typed can) is
/// prefixed with `'`, so that it is shown, not run.
fn write_cell(line: &mut String, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let guarded = if formula {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        let _ = write!(line, "\"{}\"", guarded.replace('"', "\"\""));
    } else {
        line.push_str(&guarded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{CommandRequest, Event, Execution, RejectCode, SettledOrder};
    use store::Balance;

    fn command(name: CommandName, symbol: Option<&str>, amount: Option<&str>) -> CommandRequest {
        CommandRequest::new(name, Some("u1"), symbol, amount, None).unwrap()
    }

    fn row(record: Record) -> LogRow {
        LogRow {
            seq: 7,
            ts_ms: 1_330_546_050_315,
            server: "a".into(),
            user: Some(UserId::parse("u1").unwrap()),
            txn: 4_503_599_627_370_497,
            record,
        }
    }

    fn run(request: CommandRequest, outcome: Result<Reply, Rejection>) -> LogRow {
        row(Record::Command {
            request,
            quote: None,
            outcome,
            balance: Some(Balance {
                cash: Money::from_cents(12_345),
                reserved_cash: Money::ZERO,
            }),
            events: Vec::new(),
        })
    }

    fn abc() -> Symbol {
        Symbol::parse("ABC").unwrap()
    }

    #[test]
    fn orders_the_expiry_task_released_are_a_line_each_under_their_number() {
        let expired = row(Record::Expired {
            events: vec![
                Event {
                    txn: 5,
                    kind: EventKind::BuyExpired {
                        symbol: abc(),
                        shares: 2,
                        price: Money::from_cents(1_000),
                        refund: Money::from_cents(2_000),
                    },
                },
                Event {
                    txn: 6,
                    kind: EventKind::Funds {
                        action: engine::FundsAction::Add,
                        amount: Money::from_cents(2_000),
                    },
                },
                Event {
                    txn: 8,
                    kind: EventKind::SellExpired {
                        symbol: abc(),
                        shares: 3,
                        price: Money::from_cents(1_100),
                    },
                },
            ],
        });
        let [buy, sell] = entries(&expired).try_into().unwrap();
        assert_eq!(
            (buy.command, buy.words, buy.kind, buy.txn),
            ("BUY_EXPIRED", "Buy expired", Kind::Trade, 5)
        );
        assert_eq!(buy.amount, Some(Amount::Money(Money::from_cents(2_000))));
        assert_eq!((sell.command, sell.txn), ("SELL_EXPIRED", 8));
        assert_eq!(sell.amount, Some(Amount::Money(Money::from_cents(3_300))));
        assert_eq!(
            (sell.symbol, sell.fill, sell.outcome()),
            (Some(abc()), None, "ok")
        );
    }

    #[test]
    fn a_commit_reads_in_words_with_its_fill_and_cash() {
        let settled = Reply::Settled(SettledOrder {
            symbol: abc(),
            shares: 3,
            price: Money::from_cents(1_050),
            amount: Money::from_cents(3_150),
        });
        let [entry] = entries(&run(
            command(CommandName::CommitBuy, None, None),
            Ok(settled),
        ))
        .try_into()
        .unwrap();
        assert_eq!((entry.words, entry.kind), ("Commit buy", Kind::Trade));
        assert_eq!(
            entry.fill,
            Some(Fill {
                shares: 3,
                price: Money::from_cents(1_050)
            })
        );
        assert_eq!(
            csv_line(&entry),
            "2012-02-29T20:07:30.315Z,4503599627370497,COMMIT_BUY,ABC,,ok,3,10.50,123.45\r\n"
        );
    }

    #[test]
    fn amounts_are_normalised_or_marked_and_never_run_as_formulas() {
        let refused = |amount: &str| {
            let rejection = Rejection::new(RejectCode::InvalidAmount, "no");
            let line = run(
                command(CommandName::Add, None, Some(amount)),
                Err(rejection),
            );
            entries(&line).remove(0)
        };
        assert_eq!(
            refused("1000").amount,
            Some(Amount::Money(Money::from_cents(100_000)))
        );
        assert_eq!(
            refused("1,000.50").amount,
            Some(Amount::Unparsed("1,000.50".into()))
        );
        let line = csv_line(&refused("=1+2"));
        assert!(line.contains(",'=1+2,invalid_amount,"), "{line}");
        assert!(csv_line(&refused("-5")).contains(",'-5,"));
        assert!(csv_line(&refused("@SUM(A1)")).contains(",'@SUM(A1),"));
        assert!(csv_line(&refused("1,000.50")).contains(",\"1,000.50\","));
        assert!(csv_line(&refused("a\"b")).contains(",\"a\"\"b\","));
    }

    #[test]
    fn a_trigger_fills_when_armed_or_on_a_new_price() {
        let armed = Reply::TriggerArmed(engine::ArmedTrigger {
            symbol: abc(),
            trigger_price: Money::from_cents(1_000),
            reserved_shares: None,
            current_price: Money::from_cents(900),
            executed: Some(Execution {
                shares: 2,
                price: Money::from_cents(900),
                amount: Money::from_cents(1_800),
            }),
        });
        let set = entries(&run(
            command(CommandName::SetBuyTrigger, Some("ABC"), Some("10")),
            Ok(armed),
        ));
        assert_eq!(set[0].fill.map(|f| f.shares), Some(2));

        let price = row(Record::Price {
            symbol: abc(),
            price: Money::from_cents(900),
            events: vec![
                Event {
                    txn: 3,
                    kind: EventKind::Funds {
                        action: engine::FundsAction::Add,
                        amount: Money::from_cents(1),
                    },
                },
                Event {
                    txn: 3,
                    kind: EventKind::SellTriggerExecuted {
                        symbol: abc(),
                        shares: 4,
                        price: Money::from_cents(900),
                        proceeds: Money::from_cents(3_600),
                    },
                },
            ],
        });
        let [fired] = entries(&price).try_into().unwrap();
        assert_eq!(
            (fired.command, fired.words, fired.txn, fired.cash_after),
            ("SELL_TRIGGER_EXECUTED", "Sell trigger executed", 3, None)
        );
        let filter = Filter {
            kind: Some(Kind::Trigger),
            symbol: Some(abc()),
        };
        assert!(filter.keeps(&fired));
        assert!(
            !Filter {
                kind: Some(Kind::Trade),
                symbol: None
            }
            .keeps(&fired)
        );
    }
}
