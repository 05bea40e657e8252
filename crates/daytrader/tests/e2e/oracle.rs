//! The expected outcome of a workload: every command run through the pure
//! engine, one after another, at fixed prices. The server (HTTP, auth,
//! quotes, group commit, concurrency) must agree with it to the cent.
//!
//! [`expected`] runs every command at one instant, which is right while the
//! replay is shorter than an order's 60 s. [`expected_as_logged`] runs each
//! command at the time the server recorded for it (its DUMPLOG
//! `timestamp`), so that orders expire in the oracle exactly when they did
//! on the server, whatever the replay's speed; its accounts are compared
//! with [`assert_summary_as_read`], at the time of the read.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;

use engine::{Account, CommandRequest, Context, execute};
use hyper::Method;
use serde_json::Value;

use crate::helpers::{App, Http};

pub struct Expected {
    pub accounts: BTreeMap<String, Account>,
    /// Refusals by code, the way the replay report counts them.
    pub rejected_by_code: BTreeMap<String, u64>,
    pub commands: usize,
}

/// The workload run at one instant.
pub fn expected(file: &Path) -> Expected {
    run(file, |_| 0)
}

/// The workload with each command run at the time the server recorded for
/// it in `dump`, a DUMPLOG of the whole replay. Every command the engine
/// runs must be in it.
pub fn expected_as_logged(file: &Path, dump: &Path) -> Expected {
    let times = command_times(dump);
    run(file, |txn| {
        *times
            .get(&txn)
            .unwrap_or_else(|| panic!("transaction {txn} is not in the DUMPLOG"))
    })
}

/// When the server ran each command: the `timestamp` of each `userCommand`
/// of a DUMPLOG, by transaction number (each number once, as
/// [`assert_each_command_once`] checks).
pub fn command_times(dump: &Path) -> HashMap<i64, i64> {
    let xml = std::fs::read_to_string(dump).unwrap();
    let field = |entry: &str, tag: &str| -> i64 {
        let open = format!("<{tag}>");
        let start = entry.find(&open).unwrap() + open.len();
        let end = start + entry[start..].find(&format!("</{tag}>")).unwrap();
        entry[start..end].parse().unwrap()
    };
    let mut times = HashMap::new();
    for entry in xml.split("<userCommand>").skip(1) {
        let entry = &entry[..entry.find("</userCommand>").unwrap()];
        let (txn, ts) = (field(entry, "transactionNum"), field(entry, "timestamp"));
        let earlier = times.insert(txn, ts);
        assert!(earlier.is_none(), "transaction {txn} is logged twice");
    }
    times
}

/// Runs the workload through the engine, each command at `now(txn)`.
fn run(file: &Path, now: impl Fn(i64) -> i64) -> Expected {
    let workload = loadgen::parse_file(file).unwrap();
    assert!(workload.malformed.is_empty(), "{:?}", workload.malformed);
    let mut accounts: BTreeMap<String, Option<Account>> = BTreeMap::new();
    let mut rejected_by_code = BTreeMap::new();
    let mut refuse = |code: &str| *rejected_by_code.entry(code.to_owned()).or_insert(0) += 1;
    for line in &workload.commands {
        let request = CommandRequest::new(
            line.name,
            line.user.as_deref(),
            line.symbol.as_deref(),
            line.amount.as_deref(),
            line.filename.as_deref(),
        );
        let request = match request {
            Ok(request) => request,
            Err(rejection) => {
                refuse(rejection.code.as_str());
                continue;
            }
        };
        let Some(user) = &request.user else { continue };
        let command = match request.command() {
            Ok(command) => command,
            Err(rejection) => {
                refuse(rejection.code.as_str());
                continue;
            }
        };
        let ctx = Context {
            now_ms: now(line.transaction_num),
            txn: line.transaction_num,
            price: command.price_symbol().map(quotes::fixed_price),
        };
        let account = accounts.entry(user.to_string()).or_default();
        if let Err(rejection) = execute(account, &command, &ctx, &mut Vec::new()) {
            refuse(rejection.code.as_str());
        }
    }
    Expected {
        accounts: accounts
            .into_iter()
            .filter_map(|(u, a)| Some((u, a?)))
            .collect(),
        rejected_by_code,
        commands: workload.commands.len(),
    }
}

/// A summary with what legitimately differs between runs (times, history)
/// left out.
pub fn comparable(mut summary: Value) -> Value {
    let object = summary.as_object_mut().expect("a summary object");
    object.remove("user");
    object.remove("history");
    for list in ["pending_buys", "pending_sells"] {
        for order in object[list].as_array_mut().expect("a list") {
            let order = order.as_object_mut().unwrap();
            order.remove("created_at_ms");
            order.remove("expires_at_ms");
        }
    }
    summary
}

pub fn engine_summary(account: &Account) -> Value {
    comparable(summary_view(account, 0, |_| true))
}

/// The summary the API shows of `account` at `at_ms`, money view included:
/// every symbol held was fetched at its fixed price, so that is the
/// newest price the server knows of it, for the symbols `priced` says the
/// server has a price for.
fn summary_view(account: &Account, at_ms: i64, priced: impl Fn(&str) -> bool) -> Value {
    let summary = account.summary(at_ms);
    let valuation = account.valuation(&summary, |symbol| {
        priced(symbol.as_str()).then(|| quotes::fixed_price(symbol))
    });
    let mut view = serde_json::to_value(&summary).unwrap();
    view["value"] = serde_json::to_value(valuation.value).unwrap();
    view["realized_gain"] = serde_json::to_value(valuation.realized_gain).unwrap();
    view["holdings"] = serde_json::to_value(&valuation.holdings).unwrap();
    view
}

/// Reads a summary with `read` (`GET /api/v1/users/{user}`) and checks it
/// is `account` as the server may show it at some instant of the read: the
/// server shows it as of its clock (the machine's, as the test's), which
/// hides the orders that have expired by then. So the answer must be the
/// account at the read's start or at one of the expiries that fall during
/// it; everything but the history is compared, the orders' times included.
pub async fn assert_summary_as_read<F: Future<Output = Value>>(
    user: &str,
    account: &Account,
    read: impl FnOnce() -> F,
) {
    let from = now_ms();
    let mut shown = read().await;
    let to = now_ms();
    let object = shown.as_object_mut().expect("a summary object");
    object.remove("user");
    object.remove("history");
    // Under faults a command's fetch can be lost with its failed write
    // while its price, cached, serves the retry: a symbol the server then
    // never recorded a fetch of has no price (`null`), as documented. The
    // rest of the money view is checked at the fixed prices.
    let unpriced: Vec<String> = object["holdings"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|h| h["price"].is_null())
        .map(|h| h["symbol"].as_str().expect("a symbol").to_owned())
        .collect();
    let priced = |symbol: &str| !unpriced.iter().any(|s| s == symbol);
    let first = account.summary(from);
    let expiries = first
        .pending_buys
        .iter()
        .chain(&first.pending_sells)
        .map(|order| order.expires_at_ms)
        .filter(|at| (from + 1..=to).contains(at));
    let candidates: Vec<Value> = std::iter::once(from)
        .chain(expiries)
        .map(|at| summary_view(account, at, priced))
        .collect();
    assert!(
        candidates.contains(&shown),
        "summary of {user}, read from {from} to {to} ms:\n{shown:#}\nexpected:\n{:#}",
        candidates[0]
    );
}

/// Every user of `accounts` has exactly the engine's summary on `app`.
pub async fn assert_summaries_are(app: &App, accounts: &BTreeMap<String, Account>) {
    for (user, account) in accounts {
        let reply = app.get(&format!("/api/v1/users/{user}")).await;
        assert_eq!(reply.status, 200, "{user}: {}", reply.text());
        assert_eq!(
            comparable(reply.json()),
            engine_summary(account),
            "summary of {user}"
        );
    }
}

/// Every account of `accounts` read through `http` (`GET
/// /api/v1/users/{user}` with `token`) is as [`assert_summary_as_read`]
/// allows.
pub async fn assert_accounts_as_read(
    http: &Http,
    token: &str,
    accounts: &BTreeMap<String, Account>,
) {
    for (user, account) in accounts {
        assert_summary_as_read(user, account, || async {
            let reply = http
                .request(
                    Method::GET,
                    &format!("/api/v1/users/{user}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{user}: {}", reply.text());
            reply.json()
        })
        .await;
    }
}

/// The machine's clock, as the server reads it.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every command of a replay is in its DUMPLOG exactly once: `commands`
/// `userCommand` entries, no transaction number twice.
pub fn assert_each_command_once(dump: &Path, commands: usize) {
    crate::helpers::assert_valid_log(dump);
    let numbers = command_numbers(&std::fs::read_to_string(dump).unwrap());
    let distinct: std::collections::BTreeSet<i64> = numbers.iter().copied().collect();
    assert_eq!(
        (numbers.len(), distinct.len()),
        (commands, commands),
        "each command once"
    );
}

/// The transaction numbers of a log's `userCommand` entries, in order.
pub fn command_numbers(xml: &str) -> Vec<i64> {
    xml.split("<userCommand>")
        .skip(1)
        .map(|entry| {
            let start = entry.find("<transactionNum>").unwrap() + "<transactionNum>".len();
            entry[start..entry.find("</transactionNum>").unwrap()]
                .parse()
                .unwrap()
        })
        .collect()
}
