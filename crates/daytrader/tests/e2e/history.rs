//! The readable history and its CSV export (SPEC 4b), on both back ends:
//! commands in words, amounts as money or marked, fills and cash after,
//! the filter, and `GET /api/v1/users/{user}/history.csv`.

use serde_json::json;

use crate::helpers::{App, Options, spawn_app, spawn_with};
use crate::infra::{TestDatabase, unique};
use crate::web::Browser;

#[tokio::test]
async fn the_history_reads_and_exports_on_sqlite() {
    let app = spawn_app();
    history_reads_and_exports(&app).await;
}

#[tokio::test]
async fn the_history_reads_and_exports_on_postgresql() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let app = spawn_with(Options {
        env: vec![("DATABASE_URL", database.url.clone())],
        ..Options::default()
    });
    history_reads_and_exports(&app).await;
}

async fn history_reads_and_exports(app: &App) {
    let user = unique("hist");
    let mut browser = Browser::new(app.client());
    browser.register(&user).await;
    assert_eq!(browser.add_funds("1000").await.status, 303);
    let run = |txn: u64, command: &str, symbol: Option<&str>, amount: Option<&str>| {
        let mut body = json!({"command": command, "user": user, "transaction_num": txn});
        if let Some(symbol) = symbol {
            body["symbol"] = json!(symbol);
        }
        if let Some(amount) = amount {
            body["amount"] = json!(amount);
        }
        async move { app.command(body).await }
    };
    assert_eq!(run(1, "ADD", None, Some("abc")).await.status, 422);
    assert_eq!(run(2, "ADD", None, Some("=1+2")).await.status, 422);
    let price = quotes::fixed_price(engine::Symbol::parse("ABC").unwrap());
    let bought = run(3, "BUY", Some("ABC"), Some("300.00")).await.json();
    let shares = bought["result"]["shares"].as_i64().unwrap();
    let commit = run(4, "COMMIT_BUY", None, None).await.json();
    let cash_after = commit["cash"].as_str().unwrap().to_owned();
    assert_eq!(
        run(5, "SELL", Some("XYZ"), Some("1000.00")).await.status,
        422
    );

    // The CSV, as the supervisor reads it through the API.
    let csv = app.get(&format!("/api/v1/users/{user}/history.csv")).await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(
        csv.header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "{:?}",
        csv.header("content-type")
    );
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "time,transaction_num,command,symbol,amount,outcome,shares,price,cash_after"
    );
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let commands: Vec<&str> = cells.iter().map(|c| c[2]).collect();
    assert_eq!(
        commands,
        ["SELL", "COMMIT_BUY", "BUY", "ADD", "ADD", "ADD", "REGISTER"],
        "newest first:\n{text}"
    );
    // time, number, command, symbol, amount, outcome, shares, price, cash
    let sell = &cells[0];
    assert_eq!(
        &sell[1..6],
        ["5", "SELL", "XYZ", "1000.00", "insufficient_shares"]
    );
    let commit = &cells[1];
    assert_eq!(
        commit[1..].to_vec(),
        [
            "4",
            "COMMIT_BUY",
            "ABC",
            "",
            "ok",
            &shares.to_string(),
            &price.to_string(),
            &cash_after
        ]
    );
    assert!(
        commit[0].ends_with('Z') && commit[0].contains('T'),
        "ISO 8601 in UTC: {}",
        commit[0]
    );
    assert_eq!(
        &cells[3][4..6],
        ["'=1+2", "invalid_amount"],
        "no formula runs"
    );
    assert_eq!(&cells[4][4..6], ["abc", "invalid_amount"], "as typed");
    assert_eq!(&cells[5][4..6], ["1000.00", "ok"], "normalised");

    assert_eq!(
        app.get("/api/v1/users/nobody-here/history.csv")
            .await
            .status,
        404
    );

    // The page: in words, money as money, marked amounts, the fill.
    let page = browser.page("/history").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in [
        "Commit buy",
        "Add funds",
        "$1,000.00",
        "(not an amount)",
        "You hold no shares of XYZ to sell.",
        &format!("{shares} at {}", price.dollars()),
        "href=\"/history/history.csv\"",
    ] {
        assert!(html.contains(needle), "{needle} on the page:\n{html}");
    }
    assert!(!html.contains(">COMMIT_BUY<"), "no raw command names");

    // The filter, by kind and by symbol, as a plain GET form.
    let trades = browser.page("/history?kind=trade").await.text();
    assert!(trades.contains("Commit buy") && !trades.contains("Add funds"));
    let xyz = browser.page("/history?kind=&symbol=xyz").await.text();
    assert!(xyz.contains("You hold no shares of XYZ") && !xyz.contains("Commit buy"));
    assert_eq!(browser.page("/history?kind=nonsense").await.status, 400);

    // The page's download, through the session.
    let download = browser.page("/history/history.csv").await;
    assert_eq!(download.status, 200);
    assert_eq!(download.text(), text);
}
