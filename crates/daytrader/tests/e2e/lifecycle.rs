//! The process around the API: graceful shutdown, persistence, the admin
//! token, the data-directory lock, the quote server, the small subcommands.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    App, BIN, Options, QuoteServer, assert_succeeded, spawn_app, spawn_with, try_spawn,
};

#[tokio::test]
async fn sigterm_finishes_what_is_in_flight_and_nothing_acknowledged_is_lost() {
    let mut app = spawn_app();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let client = app.client();
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for n in 1..=100_000i64 {
                    let body = json!({"command": "ADD", "user": format!("w{w}"), "amount": "1.00", "transaction_num": n});
                    match client.try_command(body).await {
                        Ok(reply) if reply.status == 200 => acknowledged.fetch_add(1, Ordering::SeqCst),
                        // Refused connections once the server stops listening.
                        _ => break,
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data_dir = app.data_dir.clone();
    let signalled = std::time::Instant::now();
    let (app, status) = tokio::task::spawn_blocking(move || {
        let status = app.terminate();
        (app, status)
    })
    .await
    .unwrap();
    assert!(status.success(), "a clean exit after SIGTERM: {status:?}");
    for worker in workers {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.load(Ordering::SeqCst);
    eprintln!(
        "{acknowledged} ADDs acknowledged before the stop, {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(acknowledged > 0);

    // `app` lives on: its temporary directory holds the data.
    let restarted = spawn_with(Options {
        data_dir: Some(data_dir),
        ..Options::default()
    });
    let mut total_cents = 0i64;
    for w in 0..16 {
        let reply = restarted.get(&format!("/api/v1/users/w{w}")).await;
        assert!(matches!(reply.status, 200 | 404), "{}", reply.text());
        if reply.status == 200 {
            let cash =
                engine::Money::parse_decimal(reply.json()["cash"].as_str().unwrap()).unwrap();
            total_cents += cash.cents();
        }
    }
    assert_eq!(
        total_cents,
        acknowledged as i64 * 100,
        "every acknowledged ADD survived, and nothing else"
    );
    drop(app);
}

#[tokio::test]
async fn the_admin_token_is_generated_once_and_kept() {
    let mut first = spawn_with(Options {
        no_token: true,
        ..Options::default()
    });
    let line = first
        .banner
        .iter()
        .find(|l| l.contains("generated, shown only now"))
        .expect("the token is shown once");
    let token = line.rsplit(": ").next().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(
        as_supervisor(&first, &token).await,
        404,
        "the generated token is the supervisor's"
    );
    let data_dir = first.data_dir.clone();
    let kept = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
    assert_eq!(kept.trim(), token);
    // Stopped, not dropped: dropping would delete the data directory.
    assert!(first.terminate().success());

    let second = spawn_with(Options {
        data_dir: Some(data_dir),
        no_token: true,
        ..Options::default()
    });
    assert!(
        second.banner.iter().all(|l| !l.contains(&token)),
        "never printed again"
    );
    assert!(second.banner.iter().any(|l| l.contains("admin-token")));
    assert_eq!(as_supervisor(&second, &token).await, 404);
}

#[tokio::test]
async fn a_data_directory_serves_one_process_at_a_time() {
    let first = spawn_app();
    let error = try_spawn(Options {
        data_dir: Some(first.data_dir.clone()),
        ..Options::default()
    })
    .err()
    .expect("the second process must not start");
    assert!(error.contains("another DayTrader process"), "{error}");
}

#[tokio::test]
async fn an_external_quote_server_and_its_absence() {
    let mut quote_server = QuoteServer::spawn("fixed");
    let app = spawn_with(Options {
        env: vec![("QUOTE_SERVER", quote_server.address.clone())],
        ..Options::default()
    });
    app.command(json!({"command": "ADD", "user": "hal", "amount": "100.00"}))
        .await;
    let quote = app
        .command(json!({"command": "QUOTE", "user": "hal", "symbol": "S"}))
        .await;
    assert_eq!(quote.json()["result"]["price"], "94.54");

    quote_server.kill();
    let down = app.command(json!({"command": "BUY", "user": "hal", "symbol": "QQ", "amount": "50.00", "transaction_num": 5})).await;
    assert_eq!(
        (down.status, down.code().as_str()),
        (503, "quote_unavailable"),
        "{}",
        down.text()
    );
    assert_eq!(down.header("retry-after"), Some("1"));
    // Nothing was recorded, so the same transaction number runs once the
    // service is back, and a command that needs no price is unaffected.
    let summary = app.get("/api/v1/users/hal").await.json();
    assert_eq!(
        (summary["cash"].as_str(), summary["reserved_cash"].as_str()),
        (Some("100.00"), Some("0.00"))
    );
    let add = app
        .command(json!({"command": "ADD", "user": "hal", "amount": "1.00", "transaction_num": 6}))
        .await;
    assert_eq!(add.status, 200);
}

#[tokio::test]
async fn healthcheck_and_migrate_subcommands() {
    let app = spawn_app();
    let port = app.url.rsplit(':').next().unwrap();
    let healthy = Command::new(BIN)
        .args(["healthcheck", "--port", port])
        .status()
        .unwrap();
    assert!(healthy.success());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unhealthy = Command::new(BIN)
        .args(["healthcheck", "--port", &closed.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!unhealthy.success());

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("migrate")
        .env("DAYTRADER_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_succeeded(&out);
    assert!(dir.path().join("daytrader.sqlite3").exists());
}

#[tokio::test]
async fn bad_configuration_is_refused_clearly() {
    for (key, value, says) in [
        ("QUOTE_SERVER", "nowhere", "QUOTE_SERVER must be"),
        ("QUOTE_FAULT_RATE", "2", "between 0 and 1"),
        ("DAYTRADER_ADMIN_TOKEN", "short", "at least 16"),
        ("PORT", "http", "invalid value"),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .env("PORT", "0")
            .env("DAYTRADER_DATA_DIR", tempfile::tempdir().unwrap().path())
            .env(key, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{key}={value} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{key}={value}: {stderr}");
    }
}

/// The status `token` gets for a summary only the supervisor may ask for
/// (an unknown user: 404 means the token was taken as the supervisor's).
async fn as_supervisor(app: &App, token: &str) -> u16 {
    app.request(
        hyper::Method::GET,
        "/api/v1/users/nobody",
        Some(token),
        None,
    )
    .await
    .status
}
