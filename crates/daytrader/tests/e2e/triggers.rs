//! The trigger engine of an embedded instance: a new price fires the
//! triggers it satisfies, each in its own recorded step.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{App, Options, Reply, spawn_with};

/// With the moving quote server every new price differs from the last by at
/// least a cent. A sell trigger a cent above the current price and a buy
/// trigger a cent below it are therefore both unmet when armed, and the
/// first new price fires exactly one of them: up fires the sell, down the
/// buy. Prices refresh every second (cache TTL 1 s, refresh 1 s).
#[tokio::test]
async fn a_new_price_fires_the_triggers_it_satisfies() {
    arm_both_sides_and_wait(&spawn_with_moving_prices()).await;
}

/// An embedded instance on the moving quote server, whose prices (and
/// so triggers) refresh every second.
pub fn spawn_with_moving_prices() -> App {
    spawn_with(Options {
        env: vec![
            ("QUOTE_SERVER", "builtin:walk".into()),
            ("QUOTE_TTL_SECS", "1".into()),
            ("TRIGGER_REFRESH_SECS", "1".into()),
        ],
        ..Options::default()
    })
}

/// Arms a sell trigger a cent above the current price of S and a buy
/// trigger a cent below it, waits (up to 20 s) until one fires, checks the
/// other did not, and returns the command whose trigger fired.
pub async fn arm_both_sides_and_wait(app: &App) -> &'static str {
    let ok = |reply: Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    ok(app
        .command(json!({"command": "ADD", "user": "seller", "amount": "10000.00"}))
        .await);
    ok(app
        .command(json!({"command": "ADD", "user": "buyer", "amount": "10000.00"}))
        .await);
    ok(app
        .command(json!({"command": "BUY", "user": "seller", "symbol": "S", "amount": "1000.00"}))
        .await);
    ok(app
        .command(json!({"command": "COMMIT_BUY", "user": "seller"}))
        .await);
    ok(app.command(json!({"command": "SET_SELL_AMOUNT", "user": "seller", "symbol": "S", "amount": "500.00"})).await);
    ok(app.command(json!({"command": "SET_BUY_AMOUNT", "user": "buyer", "symbol": "S", "amount": "500.00"})).await);

    // Arm both against one cached price; if the price moved in between
    // (the reply says which price it was checked against), try again.
    let armed = loop {
        let price = ok(app
            .command(json!({"command": "QUOTE", "user": "buyer", "symbol": "S"}))
            .await)["result"]["price"]
            .as_str()
            .unwrap()
            .to_owned();
        let cents = engine::Money::parse_decimal(&price).unwrap().cents();
        let above = engine::Money::from_cents(cents + 1).to_string();
        let below = engine::Money::from_cents(cents - 1).to_string();
        let sell = ok(app.command(json!({"command": "SET_SELL_TRIGGER", "user": "seller", "symbol": "S", "amount": above})).await);
        let buy = ok(app.command(json!({"command": "SET_BUY_TRIGGER", "user": "buyer", "symbol": "S", "amount": below})).await);
        let checked_at = |r: &Value| r["result"]["current_price"].as_str().unwrap().to_owned();
        let unfired = |r: &Value| r["result"]["executed"].is_null();
        if checked_at(&sell) == price
            && checked_at(&buy) == price
            && unfired(&sell)
            && unfired(&buy)
        {
            break (
                sell["transaction_num"].clone(),
                buy["transaction_num"].clone(),
            );
        }
        // A trigger that fired at once is gone: set its amount again.
        ok(app.command(json!({"command": "SET_SELL_AMOUNT", "user": "seller", "symbol": "S", "amount": "500.00"})).await);
        ok(app.command(json!({"command": "SET_BUY_AMOUNT", "user": "buyer", "symbol": "S", "amount": "500.00"})).await);
    };

    let deadline = Instant::now() + Duration::from_secs(20);
    let (seller, buyer) = loop {
        let seller = app.get("/api/v1/users/seller").await.json();
        let buyer = app.get("/api/v1/users/buyer").await.json();
        let sell_gone = seller["sell_triggers"].as_array().unwrap().is_empty();
        let buy_gone = buyer["buy_triggers"].as_array().unwrap().is_empty();
        if sell_gone || buy_gone {
            assert!(!(sell_gone && buy_gone), "one price cannot fire both");
            break (seller, buyer);
        }
        assert!(Instant::now() < deadline, "no trigger fired within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let log = app.get("/api/v1/log").await.text();
    assert!(
        log.matches("<quoteServer>").count() >= 2,
        "a refresh fetched a new price"
    );
    if seller["sell_triggers"].as_array().unwrap().is_empty() {
        assert!(log.contains(&format!("<transactionNum>{}</transactionNum>", armed.0)));
        assert_eq!(buyer["buy_triggers"][0]["armed"], true);
        "SET_SELL_TRIGGER"
    } else {
        assert!(
            !buyer["holdings"].as_array().unwrap().is_empty(),
            "the buy trigger bought shares"
        );
        assert_eq!(buyer["reserved_cash"], "0.00");
        assert!(log.contains(&format!("<transactionNum>{}</transactionNum>", armed.1)));
        assert_eq!(seller["sell_triggers"][0]["armed"], true);
        "SET_BUY_TRIGGER"
    }
}
