//! The JSON API of SPEC.md section 4: results, errors with their status
//! codes, idempotency, the headers every response carries.

use hyper::Method;
use serde_json::{Value, json};

use crate::helpers::{App, TOKEN, assert_valid_log, spawn_app};

async fn post_raw(app: &App, content_type: &str, body: &[u8]) -> crate::helpers::Reply {
    app.request(
        Method::POST,
        "/api/v1/commands",
        Some(TOKEN),
        Some((content_type, body.to_vec())),
    )
    .await
}

#[tokio::test]
async fn a_command_answers_its_result_and_the_balances() {
    let app = spawn_app();
    let added = app
        .command(
            json!({"command": "ADD", "user": "ann", "amount": "1000.00", "transaction_num": 1}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    assert_eq!(
        added.json(),
        json!({"transaction_num": 1, "command": "ADD", "user": "ann", "result": {"added": "1000.00"}, "cash": "1000.00", "reserved_cash": "0.00"})
    );
    let price = quotes::fixed_price(engine::Symbol::parse("ABC").unwrap());
    let bought = app.command(json!({"command": "BUY", "user": "ann", "symbol": "abc", "amount": "500.00", "transaction_num": 2})).await;
    assert_eq!(bought.status, 200, "{}", bought.text());
    let body = bought.json();
    let shares = 50_000 / price.cents();
    assert_eq!(body["result"]["symbol"], "ABC");
    assert_eq!(body["result"]["price"], price.to_string());
    assert_eq!(body["result"]["shares"], shares);
    assert_eq!(
        body["reserved_cash"],
        engine::Money::from_cents(shares * price.cents()).to_string()
    );
    assert!(body["result"]["expires_at_ms"].as_i64().unwrap() > 1_700_000_000_000);

    let summary = app
        .command(json!({"command": "DISPLAY_SUMMARY", "user": "ann", "transaction_num": 3}))
        .await
        .json();
    assert_eq!(summary["result"]["user"], "ann");
    assert_eq!(summary["result"]["pending_buys"][0]["shares"], shares);
    let history: Vec<&str> = summary["result"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["DISPLAY_SUMMARY", "BUY", "ADD"],
        "latest first, this command included"
    );
}

#[tokio::test]
async fn a_transaction_number_runs_once() {
    let app = spawn_app();
    let first = app
        .command(json!({"command": "ADD", "user": "bob", "amount": "10.00", "transaction_num": 7}))
        .await;
    assert_eq!(first.header("x-idempotent-replay"), None);
    // A retry, even a garbled one, answers the first outcome and changes nothing.
    let again = app
        .command(json!({"command": "ADD", "user": "bob", "amount": "99.00", "transaction_num": 7}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-idempotent-replay"), Some("true"));
    assert_eq!(again.json(), first.json());
    assert_eq!(app.get("/api/v1/users/bob").await.json()["cash"], "10.00");
    // A refusal is an outcome too, and is replayed as such.
    let refused = app
        .command(json!({"command": "COMMIT_BUY", "user": "bob", "transaction_num": 8}))
        .await;
    let replayed = app
        .command(json!({"command": "COMMIT_BUY", "user": "bob", "transaction_num": 8}))
        .await;
    assert_eq!((refused.status, replayed.status), (409, 409));
    assert_eq!(replayed.json(), refused.json());
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx_and_change_nothing() {
    let app = spawn_app();
    app.command(json!({"command": "ADD", "user": "cat", "amount": "100.00"}))
        .await;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "unknown command",
            json!({"command": "STEAL", "user": "cat"}),
            400,
            "unknown_command",
        ),
        (
            "missing user",
            json!({"command": "ADD", "amount": "1.00"}),
            400,
            "missing_field",
        ),
        (
            "missing amount",
            json!({"command": "ADD", "user": "cat"}),
            400,
            "missing_field",
        ),
        (
            "missing command",
            json!({"user": "cat"}),
            400,
            "malformed_json",
        ),
        (
            "amount as a number",
            json!({"command": "ADD", "user": "cat", "amount": 5.5}),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            json!({"command": "ADD", "user": "cat", "amount": "1", "amout": "2"}),
            400,
            "malformed_json",
        ),
        (
            "field it does not take",
            json!({"command": "ADD", "user": "cat", "symbol": "A", "amount": "1"}),
            400,
            "unexpected_field",
        ),
        (
            "hostile user id",
            json!({"command": "ADD", "user": "<script>'", "amount": "1"}),
            400,
            "invalid_user",
        ),
        (
            "long user id",
            json!({"command": "ADD", "user": "x".repeat(65), "amount": "1"}),
            400,
            "invalid_user",
        ),
        (
            "bad symbol",
            json!({"command": "QUOTE", "user": "cat", "symbol": "ABCD"}),
            400,
            "invalid_symbol",
        ),
        (
            "symbol with SQL",
            json!({"command": "QUOTE", "user": "cat", "symbol": "A';"}),
            400,
            "invalid_symbol",
        ),
        (
            "zero transaction",
            json!({"command": "ADD", "user": "cat", "amount": "1", "transaction_num": 0}),
            400,
            "invalid_transaction_num",
        ),
        (
            "negative amount",
            json!({"command": "ADD", "user": "cat", "amount": "-5.00"}),
            422,
            "invalid_amount",
        ),
        (
            "three decimals",
            json!({"command": "ADD", "user": "cat", "amount": "1.005"}),
            422,
            "invalid_amount",
        ),
        (
            "too large",
            json!({"command": "ADD", "user": "cat", "amount": "1000000000.01"}),
            422,
            "invalid_amount",
        ),
        (
            "unknown user",
            json!({"command": "COMMIT_BUY", "user": "nobody"}),
            404,
            "unknown_user",
        ),
        (
            "nothing pending",
            json!({"command": "CANCEL_SELL", "user": "cat"}),
            409,
            "no_pending_sell",
        ),
        (
            "no trigger amount",
            json!({"command": "SET_BUY_TRIGGER", "user": "cat", "symbol": "A", "amount": "1"}),
            409,
            "no_buy_amount",
        ),
        (
            "too poor",
            json!({"command": "BUY", "user": "cat", "symbol": "A", "amount": "100000.00"}),
            422,
            "insufficient_funds",
        ),
        (
            "no shares",
            json!({"command": "SELL", "user": "cat", "symbol": "A", "amount": "100.00"}),
            422,
            "insufficient_shares",
        ),
    ];
    for (what, body, status, code) in cases {
        let reply = app.command(body).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{what}: {}",
            reply.text()
        );
        assert!(
            !reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{what}: a human sentence"
        );
    }
    let raw: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "broken JSON",
            "application/json",
            b"{\"command\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "not JSON at all",
            "application/json",
            b"ADD,cat,1".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "wrong content type",
            "text/plain",
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        // Just over the limit: a far larger body may be cut off by the server's
        // early 413 before the client finishes writing it.
        (
            "huge body",
            "application/json",
            vec![b' '; 20_000],
            413,
            "payload_too_large",
        ),
    ];
    for (what, content_type, body, status, code) in raw {
        let reply = post_raw(&app, content_type, &body).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{what}: {}",
            reply.text()
        );
    }
    let summary = app.get("/api/v1/users/cat").await.json();
    assert_eq!(
        (summary["cash"].as_str(), summary["reserved_cash"].as_str()),
        (Some("100.00"), Some("0.00"))
    );
}

#[tokio::test]
async fn authentication_is_required_and_checked() {
    let app = spawn_app();
    let body = json!({"command": "ADD", "user": "dan", "amount": "1.00"})
        .to_string()
        .into_bytes();
    for token in [None, Some("wrong-token"), Some("")] {
        let reply = app
            .request(
                Method::POST,
                "/api/v1/commands",
                token,
                Some(("application/json", body.clone())),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (401, "unauthorized"),
            "{token:?}"
        );
    }
    for path in ["/api/v1/users/dan", "/api/v1/quotes/ABC", "/api/v1/log"] {
        assert_eq!(
            app.request(Method::GET, path, None, None).await.status,
            401,
            "{path}"
        );
    }
    assert!(
        app.get("/api/v1/users/dan").await.status == 404,
        "nothing was added without a token"
    );
}

#[tokio::test]
async fn every_response_names_its_instance() {
    let app = spawn_app();
    let replies = [
        app.get("/healthz").await,
        app.get("/readyz").await,
        app.get("/metrics").await,
        app.get("/api/v1/openapi.json").await,
        app.get("/api/v1/users/nobody").await,
        app.get("/no/such/page").await,
        app.request(Method::DELETE, "/api/v1/commands", Some(TOKEN), None)
            .await,
        app.request(Method::GET, "/api/v1/users/x", None, None)
            .await,
        post_raw(&app, "application/json", &vec![b' '; 20_000]).await,
    ];
    for reply in &replies {
        assert_eq!(
            reply.header("x-instance-id"),
            Some("e2e-1"),
            "status {}",
            reply.status
        );
        assert!(reply.header("x-request-id").is_some());
    }
    assert_eq!(replies[5].code(), "not_found");
    assert_eq!(replies[6].code(), "method_not_allowed");
    let forwarded = app.request(Method::GET, "/healthz", None, None).await;
    assert!(
        forwarded
            .header("x-request-id")
            .unwrap()
            .starts_with("e2e-1-")
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app();
    assert_eq!(
        app.request(Method::GET, "/healthz", None, None)
            .await
            .json()["status"],
        "ok"
    );
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.json()["checks"]["database"].as_str()),
        (200, Some("ok"))
    );
    app.command(json!({"command": "ADD", "user": "eve", "amount": "1.00"}))
        .await;
    let metrics = app
        .request(Method::GET, "/metrics", None, None)
        .await
        .text();
    for name in [
        "http_requests_total",
        "commands_total",
        "store_batch_size",
        "http_request_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app();
    let spec = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut paths: Vec<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v1/commands",
            "/api/v1/log",
            "/api/v1/openapi.json",
            "/api/v1/quotes/{symbol}",
            "/api/v1/quotes/{symbol}/history",
            "/api/v1/users/{user}",
            "/api/v1/users/{user}/events",
            "/api/v1/users/{user}/history.csv",
            "/api/v1/users/{user}/notifications",
            "/api/v1/users/{user}/notifications/read",
            "/healthz",
            "/metrics",
            "/readyz"
        ]
    );
    // Each documented path is served (not the 404 fallback).
    for path in paths {
        let concrete = path.replace("{symbol}", "ABC").replace("{user}", "nobody");
        let method = if path == "/api/v1/commands" || path.ends_with("/read") {
            Method::POST
        } else {
            Method::GET
        };
        let reply = app.request(method, &concrete, Some(TOKEN), None).await;
        assert_ne!(reply.code(), "not_found", "{path}");
    }
    // One body schema per command, each naming its command.
    let commands: Vec<&str> = spec["components"]["schemas"]["CommandRequest"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|schema| schema["properties"]["command"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(commands.len(), 16);
    assert!(commands.contains(&"SET_SELL_TRIGGER"), "{commands:?}");
}

#[tokio::test]
async fn quotes_are_fixed_and_then_cached() {
    let app = spawn_app();
    let first = app.get("/api/v1/quotes/xyz").await.json();
    let expected = quotes::fixed_price(engine::Symbol::parse("XYZ").unwrap());
    assert_eq!(
        (first["symbol"].as_str(), first["price"].as_str()),
        (Some("XYZ"), Some(expected.to_string().as_str()))
    );
    assert_eq!(first["cached"], false);
    assert_eq!(app.get("/api/v1/quotes/XYZ").await.json()["cached"], true);
    assert_eq!(app.get("/api/v1/quotes/X1").await.code(), "invalid_symbol");
    // The fetch cost money, so it is in the log; the cached read is not a fetch.
    let log = app.get("/api/v1/log").await.text();
    assert_eq!(log.matches("<quoteServer>").count(), 1);
}

#[tokio::test]
async fn the_log_streams_as_valid_xml_and_reading_it_is_recorded() {
    let app = spawn_app();
    app.command(json!({"command": "ADD", "user": "fay", "amount": "5.00", "transaction_num": 1}))
        .await;
    app.command(json!({"command": "QUOTE", "user": "fay", "symbol": "S", "transaction_num": 2}))
        .await;
    app.command(json!({"command": "QUOTE", "user": "fay", "symbol": "S", "transaction_num": 3}))
        .await;
    app.command(json!({"command": "ADD", "user": "gus", "amount": "-1", "transaction_num": 4}))
        .await;

    let mine = app.get("/api/v1/log?user=fay").await;
    assert_eq!(mine.header("content-type"), Some("application/xml"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fay.xml");
    std::fs::write(&path, &mine.body).unwrap();
    assert_valid_log(&path);
    let xml = mine.text();
    assert_eq!(
        xml.matches("<userCommand>").count(),
        4,
        "three commands and this DUMPLOG"
    );
    assert_eq!(
        xml.matches("<quoteServer>").count(),
        1,
        "one fetch, then the cache"
    );
    assert!(
        xml.contains("<systemEvent>"),
        "the cached price is a system event"
    );
    assert!(!xml.contains("gus"));

    let global = app
        .command(json!({"command": "DUMPLOG", "filename": "./testLOG", "transaction_num": 9}))
        .await;
    assert_eq!(global.status, 200);
    let xml = global.text();
    assert!(xml.contains("<filename>./testLOG</filename>"));
    assert!(
        xml.contains("<errorMessage>invalid_amount"),
        "gus's refused ADD is there"
    );
    assert!(xml.trim_end().ends_with("</log>"));
    assert_eq!(
        app.get("/api/v1/log?user=nobody").await.code(),
        "unknown_user"
    );
    assert_eq!(app.get("/api/v1/log?user=a/b").await.code(), "invalid_user");
    assert_eq!(
        app.get("/api/v1/log?usr=fay").await.code(),
        "malformed_query"
    );
}

#[tokio::test]
async fn notifications_tell_a_trader_what_happened_while_away() {
    let app = spawn_app();
    let price = quotes::fixed_price(engine::Symbol::parse("ABC").unwrap());
    app.command(json!({"command": "ADD", "user": "nia", "amount": "1000.00"}))
        .await;
    app.command(
        json!({"command": "SET_BUY_AMOUNT", "user": "nia", "symbol": "ABC", "amount": "500.00"}),
    )
    .await;
    // At or above the current price, the trigger fires at once.
    let trigger = engine::Money::from_cents(price.cents() + 100).to_string();
    let fired = app.command(json!({"command": "SET_BUY_TRIGGER", "user": "nia", "symbol": "ABC", "amount": trigger})).await;
    assert!(
        !fired.json()["result"]["executed"].is_null(),
        "{}",
        fired.text()
    );

    let page = app.get("/api/v1/users/nia/notifications").await.json();
    assert_eq!(page["unread"], 1, "{page}");
    let note = &page["notifications"][0];
    assert_eq!(note["kind"], "trigger_executed");
    assert!(note["message"].as_str().unwrap().contains("ABC"), "{note}");
    assert_eq!(note["read"], false);

    for (query, code) in [
        ("?limit=0", "invalid_limit"),
        ("?limit=101", "invalid_limit"),
        ("?page=2", "malformed_query"),
    ] {
        assert_eq!(
            app.get(&format!("/api/v1/users/nia/notifications{query}"))
                .await
                .code(),
            code,
            "{query}"
        );
    }
    assert_eq!(
        app.get("/api/v1/users/nobody/notifications").await.code(),
        "unknown_user"
    );

    let read = |body: Value| {
        app.request(
            Method::POST,
            "/api/v1/users/nia/notifications/read",
            Some(TOKEN),
            Some(("application/json", body.to_string().into_bytes())),
        )
    };
    assert_eq!(read(json!({"ids": [note["id"]]})).await.json()["marked"], 1);
    assert_eq!(
        read(json!({})).await.json()["marked"],
        0,
        "nothing left unread"
    );
    let page = app.get("/api/v1/users/nia/notifications").await.json();
    assert_eq!(
        (
            page["unread"].as_u64(),
            page["notifications"][0]["read"].as_bool()
        ),
        (Some(0), Some(true))
    );
    assert_eq!(read(json!({"ids": "all"})).await.code(), "malformed_json");
}
