//! Expiry on time (SPEC 4b): a pending BUY or SELL that reaches 60 s is
//! expired with no further command from its user — the reserve comes
//! back, the audit entry is stamped at the moment of expiry, and the user
//! gets an `order_expired` notification. Embedded, the server does it; in
//! a cluster, the leading worker.
//!
//! Each back end's test waits once for an order's 60 s, with the buy and
//! the sell placed together; every read below is read-only, so nothing but
//! the expiry task can have expired them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{cluster, wait_until};
use crate::helpers::{App, Reply, spawn_app};

#[tokio::test]
async fn the_embedded_server_expires_an_idle_traders_orders_on_time() {
    let app = spawn_app();
    let expired = place_and_wait_for_expiry(&app, "idle-embedded").await;
    assert_eq!(expired.server, "e2e-1");
}

#[tokio::test]
async fn the_leading_worker_expires_an_idle_traders_orders_on_time() {
    let Some(cluster) = cluster() else { return };
    let app = cluster.instance("pg-web", &[]);
    let _worker = cluster.worker("pg-worker", &[]);
    let expired = place_and_wait_for_expiry(&app, "idle-cluster").await;
    assert_eq!(expired.server, "pg-worker", "the worker expired them");
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");
}

/// What the expiry's audit entries said.
struct Expired {
    server: String,
}

fn ok(reply: Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// Gives `user` shares of XYZ, then places a BUY of ABC and a SELL of XYZ
/// and sends nothing more; waits for both expiries and checks their
/// effects. (Fixed prices are under $100, so every amount here buys or
/// sells at least one share.)
async fn place_and_wait_for_expiry(app: &App, user: &str) -> Expired {
    let command = |body: Value| async move {
        let mut body = body;
        body["user"] = json!(user);
        ok(app.command(body).await)
    };
    command(json!({"command": "ADD", "amount": "2000.00"})).await;
    command(json!({"command": "BUY", "symbol": "XYZ", "amount": "500.00"})).await;
    let owned = command(json!({"command": "COMMIT_BUY"})).await;
    let (cash, shares) = (
        owned["cash"].as_str().unwrap().to_owned(),
        owned["result"]["shares"].as_i64().unwrap(),
    );
    let buy = command(json!({"command": "BUY", "symbol": "ABC", "amount": "500.00"})).await;
    let sell = command(json!({"command": "SELL", "symbol": "XYZ", "amount": "200.00"})).await;
    let reserve = buy["result"]["amount"].as_str().unwrap().to_owned();
    assert_eq!(sell["reserved_cash"], reserve, "{sell}");
    let buy_expires = buy["result"]["expires_at_ms"].as_i64().unwrap();
    let sell_expires = sell["result"]["expires_at_ms"].as_i64().unwrap();

    // Nothing more from the trader. The bound only keeps a broken build
    // from hanging; the stamps below are what must be exact.
    let notes = wait_until(Duration::from_secs(60 + 30), || async {
        let page = ok(app
            .get(&format!("/api/v1/users/{user}/notifications"))
            .await);
        let notes: Vec<Value> = page["notifications"].as_array().unwrap().clone();
        (notes.len() == 2).then_some(notes)
    })
    .await
    .unwrap_or_else(|| panic!("{user}'s orders never expired"));
    // Newest first: the sell was placed (and so ran out) after the buy.
    let stamps: Vec<(&str, i64)> = notes
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                n["created_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stamps,
        [
            ("order_expired", sell_expires),
            ("order_expired", buy_expires)
        ],
        "{notes:?}"
    );
    assert!(notes[1]["message"].as_str().unwrap().contains("buy"));
    assert!(notes[0]["message"].as_str().unwrap().contains("sell"));

    let summary = ok(app.get(&format!("/api/v1/users/{user}")).await);
    assert_eq!(
        (&summary["cash"], &summary["reserved_cash"]),
        (&json!(cash), &json!("0.00")),
        "the reserve came back: {summary}"
    );
    assert_eq!(summary["pending_buys"], json!([]));
    assert_eq!(summary["pending_sells"], json!([]));
    let held = summary["holdings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["symbol"] == "XYZ")
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(held["shares"], shares, "the shares came back: {summary}");

    // The audit entries are stamped at the moments of expiry.
    let log = app.get(&format!("/api/v1/log?user={user}")).await.text();
    let entries = |tag: &str| -> Vec<String> {
        log.split(&format!("<{tag}>"))
            .skip(1)
            .filter_map(|e| e.split(&format!("</{tag}>")).next())
            .map(str::to_owned)
            .collect()
    };
    let at = |ms: i64| format!("<timestamp>{ms}</timestamp>");
    let events = entries("systemEvent");
    let expiry_of = |command: &str, ms: i64| {
        events
            .iter()
            .find(|e| e.contains(&at(ms)) && e.contains(&format!("<command>{command}</command>")))
            .unwrap_or_else(|| panic!("no {command} expiry stamped {ms} in {log}"))
            .clone()
    };
    let buy_expiry = expiry_of("BUY", buy_expires);
    expiry_of("SELL", sell_expires);
    let refund = entries("accountTransaction")
        .into_iter()
        .find(|e| e.contains(&at(buy_expires)))
        .unwrap_or_else(|| panic!("no refund stamped {buy_expires} in {log}"));
    assert!(refund.contains("<action>add</action>"), "{refund}");
    assert!(
        refund.contains(&format!("<funds>{reserve}</funds>")),
        "{refund}"
    );
    let server = buy_expiry
        .split("<server>")
        .nth(1)
        .and_then(|s| s.split("</server>").next())
        .unwrap()
        .to_owned();
    Expired { server }
}
