//! The money view (SPEC 4b) over a known sequence of trades, with exact
//! cents, and the price history endpoint; embedded and in the cluster.
//!
//! The quote server is the fixed one: ABC is always 52.63 and AAA 6.10.

use hyper::Method;
use serde_json::{Value, json};

use crate::cluster::cluster;
use crate::helpers::{App, TOKEN, spawn_app};
use crate::infra::unique;

async fn run(app: &App, txn: &mut i64, command: Value) {
    *txn += 1;
    let mut body = command;
    body["user"] = json!("mia");
    body["transaction_num"] = json!(*txn);
    let reply = app.command(body.clone()).await;
    assert_eq!(reply.status, 200, "{body}: {}", reply.text());
}

/// ADD 1000; buy 3 ABC (157.89), sell 1 (52.63); buy 8 AAA (48.80) and
/// reserve 2 of them for a sell trigger that the price does not reach.
async fn trade(app: &App) {
    let mut txn = 0;
    for command in [
        json!({"command": "ADD", "amount": "1000.00"}),
        json!({"command": "BUY", "symbol": "ABC", "amount": "200.00"}),
        json!({"command": "COMMIT_BUY"}),
        json!({"command": "SELL", "symbol": "ABC", "amount": "100.00"}),
        json!({"command": "COMMIT_SELL"}),
        json!({"command": "BUY", "symbol": "AAA", "amount": "50.00"}),
        json!({"command": "COMMIT_BUY"}),
        json!({"command": "SET_SELL_AMOUNT", "symbol": "AAA", "amount": "20.00"}),
        json!({"command": "SET_SELL_TRIGGER", "symbol": "AAA", "amount": "7.00"}),
    ] {
        run(app, &mut txn, command).await;
    }
}

fn assert_money_view(summary: &Value) {
    assert_eq!(summary["cash"], "845.94", "{summary}");
    assert_eq!(
        summary["value"], "1000.00",
        "nothing gained or lost at fixed prices"
    );
    assert_eq!(summary["realized_gain"], "0.00");
    let holdings = summary["holdings"].as_array().unwrap();
    let fields = |h: &Value| {
        [
            "symbol",
            "average_price",
            "cost_basis",
            "price",
            "market_value",
            "unrealized_gain",
        ]
        .map(|f| h[f].as_str().unwrap().to_owned())
    };
    assert_eq!(holdings.len(), 2, "{summary}");
    assert_eq!(
        fields(&holdings[0]),
        ["AAA", "6.10", "48.80", "6.10", "48.80", "0.00"]
    );
    assert_eq!(holdings[0]["shares"], 6);
    assert_eq!(
        holdings[0]["reserved_shares"], 2,
        "reserved shares still count"
    );
    assert_eq!(
        fields(&holdings[1]),
        ["ABC", "52.63", "105.26", "52.63", "105.26", "0.00"],
        "the sale removed a third of 157.89"
    );
}

async fn history(app: &App, path: &str) -> crate::helpers::Reply {
    app.request(Method::GET, path, Some(TOKEN), None).await
}

async fn check(app: &App) {
    trade(app).await;
    let summary = app.get("/api/v1/users/mia").await;
    assert_eq!(summary.status, 200, "{}", summary.text());
    assert_money_view(&summary.json());
    // Read again: the kept summary answers the same.
    assert_money_view(&app.get("/api/v1/users/mia").await.json());
    let display = json!({"command": "DISPLAY_SUMMARY", "user": "mia", "transaction_num": 100});
    let displayed = app.command(display.clone()).await;
    assert_money_view(&displayed.json()["result"]);
    let lines = displayed.json()["result"]["history"].clone();
    assert_eq!(lines[0]["command"], "DISPLAY_SUMMARY", "{lines}");
    assert_eq!(lines.as_array().unwrap().len(), 10, "{lines}");
    // The answer is valued from the command's own copy of the account; a
    // retry has none, and is valued from the account read back: the same.
    let retried = app.command(display).await;
    assert_eq!(retried.header("x-idempotent-replay"), Some("true"));
    assert_money_view(&retried.json()["result"]);
    assert_eq!(retried.json()["result"]["history"], lines);

    // One fetch each: later commands within the minute used the cache.
    let abc = history(app, "/api/v1/quotes/abc/history").await;
    assert_eq!(abc.status, 200, "{}", abc.text());
    let abc = abc.json();
    assert_eq!(abc["symbol"], "ABC");
    let points = abc["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{abc}");
    assert_eq!(points[0]["price"], "52.63");
    let at = points[0]["at"].as_i64().unwrap();
    assert!(at > 1_700_000_000_000, "{abc}");
    let later = history(app, &format!("/api/v1/quotes/ABC/history?since={at}")).await;
    assert_eq!(later.json(), json!({"symbol": "ABC", "points": []}));
    let earlier = history(app, &format!("/api/v1/quotes/ABC/history?since={}", at - 1)).await;
    assert_eq!(earlier.json()["points"].as_array().unwrap().len(), 1);
    let never = history(app, "/api/v1/quotes/QQ/history").await;
    assert_eq!(never.json(), json!({"symbol": "QQ", "points": []}));

    let bad_symbol = history(app, "/api/v1/quotes/ABCD/history").await;
    assert_eq!(
        (bad_symbol.status, bad_symbol.code()),
        (400, "invalid_symbol".into())
    );
    let bad_since = history(app, "/api/v1/quotes/ABC/history?since=soon").await;
    assert_eq!(
        (bad_since.status, bad_since.code()),
        (400, "invalid_since".into())
    );
    let anonymous = app
        .request(Method::GET, "/api/v1/quotes/ABC/history", None, None)
        .await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn money_view_and_price_history_embedded() {
    check(&spawn_app()).await;
}

#[tokio::test]
async fn money_view_and_price_history_in_the_cluster() {
    let Some(cluster) = cluster() else { return };
    check(&cluster.instance("money-1", &[])).await;
}

/// A summary kept on one instance stands only while the newest prices of
/// its holdings do: a price fetched on another instance, by another
/// trader (so no version of this account moves), shows on the next read.
#[tokio::test]
async fn a_kept_summary_shows_a_price_fetched_on_another_instance() {
    let Some(cluster) = cluster() else { return };
    let moving = [("QUOTE_SERVER", "builtin:walk"), ("QUOTE_TTL_SECS", "1")];
    let one = cluster.instance("kept-1", &moving);
    let two = cluster.instance("kept-2", &moving);
    let (holder, quoter) = (unique("holder"), unique("quoter"));
    let ok = |reply: crate::helpers::Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    for command in [
        json!({"command": "ADD", "user": holder, "amount": "1000.00"}),
        json!({"command": "BUY", "user": holder, "symbol": "ABC", "amount": "500.00"}),
        json!({"command": "COMMIT_BUY", "user": holder}),
    ] {
        ok(one.command(command).await);
    }
    ok(two
        .command(json!({"command": "ADD", "user": quoter, "amount": "1.00"}))
        .await);
    let path = format!("/api/v1/users/{holder}");
    let price = |summary: &Value| summary["holdings"][0]["price"].as_str().unwrap().to_owned();
    let first = price(&ok(one.get(&path).await));
    assert_eq!(price(&ok(one.get(&path).await)), first, "kept");
    // The walk may stay put for a fetch or two: fetch until it moved.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let moved = loop {
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let quote = json!({"command": "QUOTE", "user": quoter, "symbol": "ABC"});
        let fetched = ok(two.command(quote).await)["result"]["price"]
            .as_str()
            .unwrap()
            .to_owned();
        if fetched != first {
            break fetched;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ABC stayed at {first}"
        );
    };
    assert_eq!(price(&ok(one.get(&path).await)), moved);
}
