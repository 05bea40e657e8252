//! The expected outcome of a workload: every command run through the pure
//! engine, one after another, at fixed prices. The server (HTTP, auth,
//! quotes, group commit, concurrency) must agree with it to the cent.

use std::collections::BTreeMap;
use std::path::Path;

use engine::{Account, CommandRequest, Context, execute};
use serde_json::Value;

pub struct Expected {
    pub accounts: BTreeMap<String, Account>,
    /// Refusals by code, the way the replay report counts them.
    pub rejected_by_code: BTreeMap<String, u64>,
    pub commands: usize,
}

pub fn expected(file: &Path) -> Expected {
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
            now_ms: 0,
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
    comparable(serde_json::to_value(account.summary(0)).unwrap())
}

/// Every command of a replay is in its DUMPLOG exactly once: `commands`
/// `userCommand` entries, no transaction number twice.
pub fn assert_each_command_once(dump: &Path, commands: usize) {
    crate::helpers::assert_valid_log(dump);
    let xml = std::fs::read_to_string(dump).unwrap();
    let numbers: Vec<i64> = xml
        .split("<userCommand>")
        .skip(1)
        .map(|entry| {
            let start = entry.find("<transactionNum>").unwrap() + "<transactionNum>".len();
            entry[start..entry.find("</transactionNum>").unwrap()]
                .parse()
                .unwrap()
        })
        .collect();
    let distinct: std::collections::BTreeSet<i64> = numbers.iter().copied().collect();
    assert_eq!(
        (numbers.len(), distinct.len()),
        (commands, commands),
        "each command once"
    );
}
