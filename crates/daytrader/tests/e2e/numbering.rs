//! Transaction numbers: clients choose from 1 to 2^53 − 1; the system
//! numbers what no client numbered above that, so one user's log never
//! files two steps under one number.

use hyper::Method;
use serde_json::json;

use crate::helpers::{TOKEN, spawn_app};
use crate::oracle::command_numbers;

const FIRST_SYSTEM_NUMBER: i64 = 1 << 53;

#[tokio::test]
async fn a_number_the_system_chose_never_meets_a_clients() {
    let app = spawn_app();
    let add = json!({"command": "ADD", "user": "numa", "amount": "1000.00", "transaction_num": 1});
    assert_eq!(app.command(add).await.status, 200);
    // Reading the log is recorded as a DUMPLOG, numbered by the system: it
    // used to take the row number, 2 here, which the client uses next.
    assert_eq!(app.get("/api/v1/log?user=numa").await.status, 200);
    let buy = json!({"command": "BUY", "user": "numa", "symbol": "ABC", "amount": "100.00", "transaction_num": 2});
    let bought = app.command(buy).await;
    assert_eq!(bought.status, 200, "{}", bought.text());
    assert_eq!(bought.header("x-idempotent-replay"), None, "a new command");
    // A command without a number gets one of the system's, and says which.
    let quote = app
        .command(json!({"command": "QUOTE", "user": "numa", "symbol": "ABC"}))
        .await;
    assert_eq!(quote.status, 200, "{}", quote.text());
    let chosen = quote.json()["transaction_num"].as_i64().unwrap();
    assert!(chosen >= FIRST_SYSTEM_NUMBER, "{chosen}");

    let log = app.get("/api/v1/log?user=numa").await.text();
    let numbers = command_numbers(&log);
    assert_eq!(numbers.len(), 5, "{log}");
    let distinct: std::collections::BTreeSet<i64> = numbers.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        numbers.len(),
        "no number twice: {numbers:?}"
    );
    assert_eq!(&numbers[..1], &[1]);
    assert_eq!(numbers[2], 2, "the BUY");
    assert!(
        numbers[1] >= FIRST_SYSTEM_NUMBER && numbers[3] == chosen,
        "{numbers:?}"
    );
}

#[tokio::test]
async fn a_client_number_in_the_systems_range_is_refused() {
    let app = spawn_app();
    for (n, status) in [(FIRST_SYSTEM_NUMBER - 1, 200), (FIRST_SYSTEM_NUMBER, 400)] {
        let reply = app
            .request(
                Method::POST,
                "/api/v1/commands",
                Some(TOKEN),
                Some((
                    "application/json",
                    json!({"command": "ADD", "user": "numb", "amount": "1.00", "transaction_num": n})
                        .to_string()
                        .into_bytes(),
                )),
            )
            .await;
        assert_eq!(reply.status, status, "{n}: {}", reply.text());
        if status == 400 {
            assert_eq!(reply.code(), "invalid_transaction_num");
        }
    }
    assert_eq!(app.get("/api/v1/users/numb").await.json()["cash"], "1.00");
}
