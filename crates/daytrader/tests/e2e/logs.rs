//! What an operator reads: logs without colour codes when they go to a
//! file or a pipe, every line logged while serving a request carrying its
//! request id (and the trigger engine's, the job it runs), and the
//! process's own CPU, memory and file descriptors on `/metrics`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::wait_until;
use crate::helpers::{App, Options, QuoteServer, TOKEN, spawn_with};

/// The JSON log lines whose message is `message`.
fn logged(app: &App, message: &str) -> Vec<Value> {
    app.logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == message)
        .collect()
}

/// Whether a JSON log line was logged inside a span with these fields.
fn in_span(line: &Value, field: &str, value: &str) -> bool {
    line["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|span| span[field] == value))
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let app = spawn_with(Options {
        env: vec![("RUST_LOG", "info".into())],
        ..Options::default()
    });
    assert_eq!(app.get("/healthz").await.status, 200);
    let seen = wait_until(Duration::from_secs(10), || async {
        let logs = app.logs();
        logs.iter().any(|l| l.contains("request")).then_some(logs)
    })
    .await
    .expect("the request was logged");
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "a colour code in {line:?}");
    }
}

#[tokio::test]
async fn every_line_names_the_request_or_the_job_it_was_logged_for() {
    let mut quotes = QuoteServer::spawn("fixed");
    let app = spawn_with(Options {
        env: vec![
            ("QUOTE_SERVER", quotes.address.clone()),
            ("LOG_FORMAT", "json".into()),
            ("RUST_LOG", "info".into()),
            ("QUOTE_TTL_SECS", "1".into()),
            ("TRIGGER_REFRESH_SECS", "1".into()),
        ],
        ..Options::default()
    });
    // A trigger armed: the trigger engine refreshes ABC's price every
    // second from now on.
    for body in [
        json!({"command": "ADD", "user": "logan", "amount": "1000.00", "transaction_num": 1}),
        json!({"command": "SET_BUY_AMOUNT", "user": "logan", "symbol": "ABC", "amount": "100.00", "transaction_num": 2}),
        json!({"command": "SET_BUY_TRIGGER", "user": "logan", "symbol": "ABC", "amount": "1.00", "transaction_num": 3}),
    ] {
        let reply = app.command(body.clone()).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text());
    }
    quotes.kill();

    // A request whose quote fetch fails: the quote client's line (logged
    // by the task that fetches) carries the request's id.
    let request = hyper::Request::post(format!("{}/api/v1/commands", app.url))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .header("x-request-id", "span-check-42")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json!({"command": "QUOTE", "user": "logan", "symbol": "XYZ", "transaction_num": 4})
                .to_string(),
        )))
        .unwrap();
    let reply = app.try_request(request).await.unwrap();
    assert_eq!(reply.status, 503, "{}", reply.text());
    // The answer can arrive before the test's reader of the server's
    // stderr has taken in the lines written before it: wait for them.
    let request_line = wait_until(Duration::from_secs(10), || async {
        logged(&app, "request")
            .into_iter()
            .find(|line| in_span(line, "request_id", "span-check-42"))
    })
    .await;
    assert!(
        request_line.is_some(),
        "the request's own line: {:#?}",
        app.logs()
    );
    // Logged before the request's line, so taken in by now.
    let fetch_failed = logged(&app, "quote fetch failed");
    let for_request: Vec<&Value> = fetch_failed
        .iter()
        .filter(|line| line["fields"]["symbol"] == "XYZ")
        .collect();
    assert!(!for_request.is_empty(), "{:#?}", app.logs());
    for line in for_request {
        assert!(in_span(line, "request_id", "span-check-42"), "{line}");
    }

    // The trigger engine's refresh fails the same way, under its job.
    let refresh = wait_until(Duration::from_secs(20), || async {
        logged(&app, "could not refresh the prices of armed triggers")
            .into_iter()
            .next()
    })
    .await
    .expect("the refresh job failed and said so");
    assert!(
        in_span(&refresh, "job", "refresh_armed_prices"),
        "{refresh}"
    );
    let fetch_in_job = logged(&app, "quote fetch failed")
        .into_iter()
        .find(|line| line["fields"]["symbol"] == "ABC")
        .expect("the job's own fetch failed");
    assert!(
        in_span(&fetch_in_job, "job", "refresh_armed_prices"),
        "{fetch_in_job}"
    );
}

#[tokio::test]
async fn metrics_include_the_process_cpu_memory_and_file_descriptors() {
    let app = spawn_with(Options::default());
    let metrics = app.get("/metrics").await.text();
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    ] {
        let value = metrics
            .lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"));
        assert!(
            value > 0.0 || name == "process_cpu_seconds_total",
            "{name} = {value}"
        );
    }
}
