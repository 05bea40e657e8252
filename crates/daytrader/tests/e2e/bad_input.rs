//! Bad input, over HTTP and in workload files: every case is refused with a
//! clear 4xx and a JSON error code (never a 5xx), and changes nothing — the
//! trader's balances stay as they were, and the audit log gains only what
//! SPEC.md section 5 asks for (a business refusal is recorded as a command
//! and its error; a malformed request, which is not a command, is not).
//!
//! `api::bad_requests_get_a_clear_4xx_and_change_nothing` covers one case
//! of each kind; these tables go after the hostile and the borderline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{Value, json};

use crate::helpers::{App, Http, TOKEN, run_workload, spawn_app};

/// The trader every case runs against.
const USER: &str = "eve";

/// What a refused request may leave behind.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Effect {
    /// Malformed: not a command at all, so not even recorded.
    Nothing,
    /// A command refused by a business rule (an invalid amount): recorded
    /// with its error, and nothing else.
    Recorded,
}

enum Request {
    /// `POST /api/v1/commands` with this JSON body.
    Command(Value),
    /// `POST /api/v1/commands` with this content type and body.
    Raw(&'static str, Vec<u8>),
    /// `POST /api/v1/commands` with this body and no content type at all.
    Untyped(Vec<u8>),
    /// A GET, as the supervisor.
    Get(String),
}

struct Case {
    what: String,
    request: Request,
    status: u16,
    code: &'static str,
    effect: Effect,
}

fn case(what: impl Into<String>, request: Request, status: u16, code: &'static str) -> Case {
    let effect = if status == 422 {
        Effect::Recorded
    } else {
        Effect::Nothing
    };
    Case {
        what: what.into(),
        request,
        status,
        code,
        effect,
    }
}

/// The account as the summary shows it (its history aside, which lists
/// recorded refusals) and the audit log's entries by kind.
#[derive(Debug, PartialEq)]
struct Snapshot {
    account: Value,
    user_commands: usize,
    errors: usize,
    transactions: usize,
    entries: usize,
}

async fn snapshot(app: &Http) -> Snapshot {
    let summary = app.get(&format!("/api/v1/users/{USER}")).await;
    assert_eq!(summary.status, 200, "{}", summary.text());
    let mut account = summary.json();
    account.as_object_mut().unwrap().remove("history");
    let log = app.get("/api/v1/log").await;
    assert_eq!(log.status, 200, "{}", log.text());
    let log = log.text();
    let count = |tag: &str| log.matches(&format!("<{tag}>")).count();
    Snapshot {
        account,
        user_commands: count("userCommand"),
        errors: count("errorEvent"),
        transactions: count("accountTransaction"),
        entries: [
            "userCommand",
            "quoteServer",
            "accountTransaction",
            "systemEvent",
            "errorEvent",
        ]
        .iter()
        .map(|tag| count(tag))
        .sum(),
    }
}

/// A trader with cash, shares and a buy trigger, so that there is something
/// to damage.
async fn setup() -> (App, usize) {
    let app = spawn_app();
    for body in [
        json!({"command": "ADD", "user": USER, "amount": "10000.00"}),
        json!({"command": "BUY", "user": USER, "symbol": "ABC", "amount": "500.00"}),
        json!({"command": "COMMIT_BUY", "user": USER}),
        json!({"command": "SET_BUY_AMOUNT", "user": USER, "symbol": "XYZ", "amount": "100.00"}),
    ] {
        let reply = app.command(body.clone()).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text());
    }
    // Reading the log is itself a recorded DUMPLOG: measure what one read adds.
    let first = snapshot(&app).await;
    let second = snapshot(&app).await;
    let per_read = second.user_commands - first.user_commands;
    assert_eq!(second.entries - first.entries, per_read);
    (app, per_read)
}

async fn send(app: &App, request: &Request) -> crate::helpers::Reply {
    match request {
        Request::Command(body) => app.command(body.clone()).await,
        Request::Raw(content_type, body) => {
            app.request(
                Method::POST,
                "/api/v1/commands",
                Some(TOKEN),
                Some((content_type, body.clone())),
            )
            .await
        }
        Request::Untyped(body) => {
            let request = hyper::Request::post(format!("{}/api/v1/commands", app.url))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
                .unwrap();
            app.try_request(request).await.expect("the server answers")
        }
        Request::Get(path) => app.get(path).await,
    }
}

/// Runs every case: the status and code, a human sentence, and what
/// changed (nothing, or the recorded refusal only).
async fn check(app: &App, per_read: usize, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    for case in cases {
        let what = &case.what;
        let before = snapshot(app).await;
        let reply = send(app, &case.request).await;
        assert!(
            (400..500).contains(&reply.status),
            "{what}: a 4xx, not {}: {}",
            reply.status,
            reply.text()
        );
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (case.status, case.code),
            "{what}: {}",
            reply.text()
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!message.is_empty(), "{what}: a human sentence");
        let after = snapshot(app).await;
        assert_eq!(after.account, before.account, "{what}: the account changed");
        let recorded = usize::from(case.effect == Effect::Recorded);
        assert_eq!(
            (
                after.user_commands - before.user_commands,
                after.errors - before.errors,
                after.transactions - before.transactions,
                after.entries - before.entries,
            ),
            (per_read + recorded, recorded, 0, per_read + 2 * recorded),
            "{what}: the audit log changed beyond {:?}",
            case.effect
        );
    }
}

fn command(what: &str, body: Value, status: u16, code: &'static str) -> Case {
    case(what, Request::Command(body), status, code)
}

/// Percent-encodes a path segment or query value, every byte that is not
/// unreserved.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn broken_or_oversized_bodies_are_refused() {
    let (app, per_read) = setup().await;
    let json = "application/json";
    let raw = |what: &str, body: &[u8], status, code| {
        case(what, Request::Raw(json, body.to_vec()), status, code)
    };
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let cases = vec![
        raw("empty body", b"", 400, "malformed_json"),
        raw("white space", b" \r\n\t", 400, "malformed_json"),
        raw("cut short", b"{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\"", 400, "malformed_json"),
        raw("trailing garbage", b"{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\"} x", 400, "malformed_json"),
        raw("two bodies", b"{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\"}{}", 400, "malformed_json"),
        raw("a list", b"[{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\"}]", 400, "malformed_json"),
        raw("null", b"null", 400, "malformed_json"),
        raw("a string", b"\"ADD,eve,1.00\"", 400, "malformed_json"),
        raw("single quotes", b"{'command': 'ADD', 'user': 'eve', 'amount': '1.00'}", 400, "malformed_json"),
        raw("a comment", b"{\"command\": \"ADD\", /* hi */ \"user\": \"eve\", \"amount\": \"1.00\"}", 400, "malformed_json"),
        raw("a field twice", b"{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\", \"amount\": \"2.00\"}", 400, "malformed_json"),
        raw("not UTF-8", b"{\"command\": \"ADD\", \"user\": \"e\xffe\", \"amount\": \"1.00\"}", 400, "malformed_json"),
        raw("a lone surrogate", b"{\"command\": \"ADD\", \"user\": \"\\ud800\", \"amount\": \"1.00\"}", 400, "malformed_json"),
        raw("a byte-order mark", b"\xef\xbb\xbf{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\"}", 400, "malformed_json"),
        raw("nested 5000 deep", deep.as_bytes(), 400, "malformed_json"),
        raw("a deep field", format!("{{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"1.00\", \"x\": {deep}}}").as_bytes(), 400, "malformed_json"),
        raw("just over the limit", &[b' '; 16 * 1024 + 1], 413, "payload_too_large"),
    ];
    check(&app, per_read, cases).await;
    huge_declared_body_is_413(&app).await;
}

/// A 10 MB body is refused from its Content-Length, before it is read; the
/// client here sends the head and a little of the body and waits for the
/// answer (a client that kept writing might see its connection reset before
/// it reads the 413).
async fn huge_declared_body_is_413(app: &App) {
    let before = snapshot(app).await;
    let head = format!(
        "POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(b"{\"command\": \"ADD\", \"user\": \"eve\", \"amount\": \"");
    let answer = raw_exchange(app, &request, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    let after = snapshot(app).await;
    assert_eq!(after.account, before.account);
    assert_eq!(after.errors, before.errors);
    assert_eq!(after.transactions, before.transactions);
}

/// Sends raw bytes on a new connection and reads one answer: until the end
/// of a JSON body, the server closing, or `limit`; lossily as text.
fn raw_exchange(app: &App, request: &[u8], limit: Duration) -> String {
    let mut stream = TcpStream::connect(app.url.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    stream.set_write_timeout(Some(limit)).unwrap();
    // The server may answer and close before reading everything; what it
    // answered is still read below (or the connection was reset).
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        // One answer is enough: stop at the end of a JSON body.
        if answer.ends_with(b"}}") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let (app, per_read) = setup().await;
    let body = json!({"command": "ADD", "user": USER, "amount": "1.00"})
        .to_string()
        .into_bytes();
    let cases = [
        "text/plain",
        "text/json",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-patch+json",
        "json",
        "",
    ]
    .into_iter()
    .map(|content_type| {
        case(
            format!("content type {content_type:?}"),
            Request::Raw(content_type, body.clone()),
            415,
            "unsupported_media_type",
        )
    })
    .chain([case(
        "no content type at all",
        Request::Untyped(body.clone()),
        415,
        "unsupported_media_type",
    )])
    .collect();
    check(&app, per_read, cases).await;
}

#[tokio::test]
async fn unknown_commands_and_missing_or_extra_fields() {
    let (app, per_read) = setup().await;
    let mut cases: Vec<Case> = [
        "",
        " ",
        "ADD ",
        " ADD",
        "ADD\u{0}",
        "AD D",
        "ADDX",
        "\u{ff21}\u{ff24}\u{ff24}",
        "A\u{200d}DD",
        "DROP TABLE users; --",
        "<script>alert(1)</script>",
        &"A".repeat(10_000),
    ]
    .into_iter()
    .map(|name| {
        command(
            &format!("command {:?}", name.chars().take(30).collect::<String>()),
            json!({"command": name, "user": USER, "amount": "1.00"}),
            400,
            "unknown_command",
        )
    })
    .collect();
    cases.extend([
        command(
            "no command",
            json!({"user": USER, "amount": "1.00"}),
            400,
            "malformed_json",
        ),
        command(
            "a null command",
            json!({"command": null, "user": USER}),
            400,
            "malformed_json",
        ),
        command(
            "a numeric command",
            json!({"command": 1, "user": USER}),
            400,
            "malformed_json",
        ),
        command(
            "a list as command",
            json!({"command": ["ADD"], "user": USER}),
            400,
            "malformed_json",
        ),
        command(
            "an unknown field",
            json!({"command": "ADD", "user": USER, "amount": "1.00", "admin": true}),
            400,
            "malformed_json",
        ),
        command(
            "a user as a number",
            json!({"command": "ADD", "user": 7, "amount": "1.00"}),
            400,
            "malformed_json",
        ),
        command(
            "a user as an object",
            json!({"command": "ADD", "user": {"id": USER}, "amount": "1.00"}),
            400,
            "malformed_json",
        ),
        command(
            "ADD without a user",
            json!({"command": "ADD", "amount": "1.00"}),
            400,
            "missing_field",
        ),
        command(
            "ADD with a null user",
            json!({"command": "ADD", "user": null, "amount": "1.00"}),
            400,
            "missing_field",
        ),
        command(
            "ADD without an amount",
            json!({"command": "ADD", "user": USER}),
            400,
            "missing_field",
        ),
        command(
            "BUY without a symbol",
            json!({"command": "BUY", "user": USER, "amount": "1.00"}),
            400,
            "missing_field",
        ),
        command(
            "SELL without an amount",
            json!({"command": "SELL", "user": USER, "symbol": "ABC"}),
            400,
            "missing_field",
        ),
        command(
            "QUOTE without a symbol",
            json!({"command": "QUOTE", "user": USER}),
            400,
            "missing_field",
        ),
        command(
            "SET_SELL_TRIGGER without a price",
            json!({"command": "SET_SELL_TRIGGER", "user": USER, "symbol": "ABC"}),
            400,
            "missing_field",
        ),
        command(
            "DISPLAY_SUMMARY without a user",
            json!({"command": "DISPLAY_SUMMARY"}),
            400,
            "missing_field",
        ),
        command(
            "COMMIT_BUY with a symbol",
            json!({"command": "COMMIT_BUY", "user": USER, "symbol": "ABC"}),
            400,
            "unexpected_field",
        ),
        command(
            "COMMIT_SELL with an amount",
            json!({"command": "COMMIT_SELL", "user": USER, "amount": "1.00"}),
            400,
            "unexpected_field",
        ),
        command(
            "CANCEL_SET_BUY with an amount",
            json!({"command": "CANCEL_SET_BUY", "user": USER, "symbol": "XYZ", "amount": "1.00"}),
            400,
            "unexpected_field",
        ),
        command(
            "ADD with a file name",
            json!({"command": "ADD", "user": USER, "amount": "1.00", "filename": "x"}),
            400,
            "unexpected_field",
        ),
    ]);
    check(&app, per_read, cases).await;
}

#[tokio::test]
async fn malformed_or_out_of_range_amounts() {
    let (app, per_read) = setup().await;
    let refused = [
        "-1",
        "-0.01",
        "0",
        "0.00",
        "1.234",
        "1.005",
        "1e3",
        "1E3",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "1000000000.01",
        "9999999999",
        "99999999999999999999999999999999",
        "",
        " 1.00",
        "1.00 ",
        "1.00\n",
        "+1.00",
        "1,000.00",
        "1.",
        ".5",
        "0x10",
        "1/2",
        "\u{ff11}.00",
        "\u{661}.00",
        "1\u{200d}.00",
        "1.00' OR 1=1 --",
    ];
    let mut cases: Vec<Case> = refused
        .iter()
        .map(|amount| {
            command(
                &format!("ADD {amount:?}"),
                json!({"command": "ADD", "user": USER, "amount": amount}),
                422,
                "invalid_amount",
            )
        })
        .collect();
    for (name, symbol) in [
        ("BUY", "ABC"),
        ("SELL", "ABC"),
        ("SET_BUY_AMOUNT", "ABC"),
        ("SET_BUY_TRIGGER", "XYZ"),
        ("SET_SELL_TRIGGER", "ABC"),
    ] {
        for amount in ["-5.00", "1.234", "1000000000.01"] {
            cases.push(command(
                &format!("{name} {amount:?}"),
                json!({"command": name, "user": USER, "symbol": symbol, "amount": amount}),
                422,
                "invalid_amount",
            ));
        }
    }
    // Too long to be an amount at all: malformed, not recorded.
    for amount in [
        "1".repeat(33),
        format!("1.{}", "0".repeat(40)),
        "9".repeat(5000),
    ] {
        cases.push(command(
            &format!("ADD {} digits", amount.len()),
            json!({"command": "ADD", "user": USER, "amount": amount}),
            400,
            "malformed_amount",
        ));
    }
    // JSON numbers are not exact: an amount is a string.
    for amount in [json!(1), json!(1.5), json!(1e3), json!(-1), json!(null)] {
        let code = if amount.is_null() {
            "missing_field"
        } else {
            "malformed_json"
        };
        cases.push(command(
            &format!("ADD {amount}"),
            json!({"command": "ADD", "user": USER, "amount": amount}),
            400,
            code,
        ));
    }
    check(&app, per_read, cases).await;
}

#[tokio::test]
async fn malformed_transaction_numbers() {
    let (app, per_read) = setup().await;
    let body = |n: &str| {
        format!(
            r#"{{"command": "ADD", "user": "{USER}", "amount": "1.00", "transaction_num": {n}}}"#
        )
        .into_bytes()
    };
    let mut cases: Vec<Case> = ["0", "-1", "-9223372036854775808", "-0"]
        .into_iter()
        .map(|n| {
            case(
                format!("transaction_num {n}"),
                Request::Raw("application/json", body(n)),
                400,
                "invalid_transaction_num",
            )
        })
        .collect();
    for n in [
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "1e30",
        "1.5",
        "0.999",
        "9007199254740993.0",
        "\"5\"",
        "\"abc\"",
        "true",
        "[1]",
        "{}",
        "NaN",
    ] {
        cases.push(case(
            format!("transaction_num {n}"),
            Request::Raw("application/json", body(n)),
            400,
            "malformed_json",
        ));
    }
    check(&app, per_read, cases).await;
}

/// User ids and symbols that are not ids or symbols, in command bodies, in
/// paths and in query strings.
#[tokio::test]
async fn hostile_user_ids_and_symbols() {
    let (app, per_read) = setup().await;
    let long = "x".repeat(65);
    let users = [
        "",
        " ",
        "eve ",
        "\"eve\"",
        "o'brien",
        "' OR 1=1 --",
        "eve'; DROP TABLE accounts; --",
        "<script>alert(1)</script>",
        "eve\u{0}",
        "\u{0}",
        "eve\nadmin",
        "eve\r\n",
        "eve\t",
        "\u{1b}[31m",
        "\u{202e}eve",
        "e\u{200d}ve",
        "\u{feff}eve",
        "\u{ff45}\u{ff56}\u{ff45}",
        "\u{e9}ve",
        "../../etc/passwd",
        "eve/..",
        "%65ve",
        "eve;admin",
        "eve,1.00",
        long.as_str(),
    ];
    let mut cases = Vec::new();
    for user in users {
        let shown: String = user.chars().take(20).collect();
        cases.push(command(
            &format!("ADD for user {shown:?}"),
            json!({"command": "ADD", "user": user, "amount": "1.00"}),
            400,
            "invalid_user",
        ));
        if !user.is_empty() {
            cases.push(case(
                format!("summary of user {shown:?}"),
                Request::Get(format!("/api/v1/users/{}", encode(user))),
                400,
                "invalid_user",
            ));
            cases.push(case(
                format!("notifications of user {shown:?}"),
                Request::Get(format!("/api/v1/users/{}/notifications", encode(user))),
                400,
                "invalid_user",
            ));
        }
        cases.push(case(
            format!("log of user {shown:?}"),
            Request::Get(format!("/api/v1/log?user={}", encode(user))),
            400,
            "invalid_user",
        ));
    }
    cases.push(case(
        "a path that is not UTF-8",
        Request::Get("/api/v1/users/e%FFe".into()),
        400,
        "malformed_path",
    ));
    let symbols = [
        "",
        " ",
        "ABCD",
        "A1",
        "A B",
        "A'",
        "';--",
        "A;",
        "<s>",
        "A\u{0}",
        "\u{0}",
        "A\n",
        "\u{ff21}",
        "\u{c9}",
        "A\u{200d}",
        "\u{202e}AB",
        "\u{391}",
    ];
    for symbol in symbols {
        cases.push(command(
            &format!("QUOTE of {symbol:?}"),
            json!({"command": "QUOTE", "user": USER, "symbol": symbol}),
            400,
            "invalid_symbol",
        ));
        cases.push(command(
            &format!("BUY of {symbol:?}"),
            json!({"command": "BUY", "user": USER, "symbol": symbol, "amount": "10.00"}),
            400,
            "invalid_symbol",
        ));
        if !symbol.is_empty() {
            cases.push(case(
                format!("price of {symbol:?}"),
                Request::Get(format!("/api/v1/quotes/{}", encode(symbol))),
                400,
                "invalid_symbol",
            ));
        }
    }
    check(&app, per_read, cases).await;
}

/// The server records a DUMPLOG's file name and never writes to it (SPEC.md
/// section 6): a path trick is answered with the log, and no file appears.
/// A name with control characters is refused.
#[tokio::test]
async fn dumplog_file_names_are_never_written_by_the_server() {
    let (app, per_read) = setup().await;
    let outside = tempfile::tempdir().unwrap();
    let absolute = outside.path().join("stolen.xml");
    let climbing = format!(
        "../../../../../../../../..{}",
        outside.path().join("climbed.xml").display()
    );
    for name in [
        "../../etc/passwd",
        "/etc/passwd",
        absolute.to_str().unwrap(),
        climbing.as_str(),
        "..\\..\\windows\\system32",
        "~/.ssh/authorized_keys",
    ] {
        let reply = app
            .command(json!({"command": "DUMPLOG", "filename": name}))
            .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/xml"));
        assert!(reply.text().contains("<log>"), "{name}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    let cases = [
        "a\u{0}b",
        "\u{0}",
        "../../etc/passwd\u{0}.xml",
        "log\n.xml",
        "log\r",
        "\u{1b}[2J",
        "\u{85}",
    ]
    .into_iter()
    .map(|name| {
        command(
            &format!("DUMPLOG to {name:?}"),
            json!({"command": "DUMPLOG", "filename": name}),
            400,
            "unexpected_field",
        )
    })
    .chain([command(
        "DUMPLOG to a 256-character name",
        json!({"command": "DUMPLOG", "filename": "x".repeat(256)}),
        400,
        "unexpected_field",
    )])
    .collect();
    check(&app, per_read, cases).await;
}

/// `daytrader workload run` saves a DUMPLOG only inside its output
/// directory: a file name that would leave it is reported and nothing is
/// written outside.
#[tokio::test]
async fn a_workload_cannot_make_the_replay_write_outside_its_directory() {
    let app = spawn_app();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let absolute = outside.join("abs.xml");
    let workload = dir.path().join("workload.txt");
    let lines = format!(
        "[1] ADD,eve,100.00\n\
         [2] DUMPLOG,../outside/climbed.xml\n\
         [3] DUMPLOG,{}\n\
         [4] DUMPLOG,eve,out/../../outside/sneaky.xml\n\
         [5] DUMPLOG,a\u{0}b\n\
         [6] DUMPLOG,./\n\
         [7] DUMPLOG,./ok.xml\n",
        absolute.display()
    );
    std::fs::write(&workload, lines).unwrap();
    let (status, report) = run_workload(&app.url, TOKEN, &workload, &out, &[]).await;
    assert!(
        !status.success(),
        "refused file names fail the run: {report:#}"
    );
    let refused: Vec<i64> = report["dumplog_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transaction_num"].as_i64().unwrap())
        .collect();
    assert_eq!(refused, [2, 3, 4, 5, 6], "{report:#}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // The one safe name was saved where it belongs, and nothing else was.
    let saved: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "report.json")
        .collect();
    assert_eq!(saved, ["ok.xml"]);
    assert!(
        std::fs::read_to_string(out.join("ok.xml"))
            .unwrap()
            .contains("<log>")
    );
    assert!(!Path::new("/etc/passwd.xml").exists());
}

/// A request head over the server's limit is refused with 431 before any
/// handler runs; the server goes on serving.
#[tokio::test]
async fn an_oversized_request_head_is_431() {
    let (app, _) = setup().await;
    let before = snapshot(&app).await;
    // Exactly the limit, with the head still unfinished: the server has
    // read everything sent when it refuses, so the answer arrives intact.
    let mut request = format!(
        "GET /api/v1/users/{USER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nX-Big: "
    );
    request.push_str(&"a".repeat(64 * 1024 - request.len()));
    let answer = raw_exchange(&app, request.as_bytes(), Duration::from_secs(15));
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        answer.chars().take(300).collect::<String>()
    );
    // One header over the 64 KiB limit. The server answers and closes while
    // the client may still be writing, which can reset the connection before
    // the answer is read; either way it is refused, never served or a 5xx.
    let big = format!(
        "GET /api/v1/users/{USER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let answer = raw_exchange(&app, big.as_bytes(), Duration::from_secs(15));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        answer.chars().take(300).collect::<String>()
    );
    // A complete head over 16 KiB reaches the server whole: a clear error.
    let mut request = format!(
        "GET /api/v1/users/{USER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    );
    for i in 0..40 {
        request.push_str(&format!("X-Filler-{i}: {}\r\n", "b".repeat(500)));
    }
    request.push_str("\r\n");
    let answer = raw_exchange(&app, request.as_bytes(), Duration::from_secs(15));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains("\"headers_too_large\""), "{answer}");
    let long_path = format!("/api/v1/users/{USER}?{}", "x=1&".repeat(5000));
    let reply = app.get(&long_path).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (431, "headers_too_large")
    );
    let after = snapshot(&app).await;
    assert_eq!(after.account, before.account);
    assert_eq!(after.errors, before.errors);
    assert_eq!(after.transactions, before.transactions);
}

/// A client that sends half a request and stalls is disconnected once the
/// server's header timeout (10 s) passes; one that stalls half way through
/// its body gets a 400 after the body timeout (10 s). Neither holds up
/// anyone else, and neither changes anything.
#[tokio::test]
async fn a_stalled_client_is_disconnected() {
    let (app, _) = setup().await;
    let before = snapshot(&app).await;
    let started = Instant::now();
    let address = app.url.trim_start_matches("http://").to_owned();
    let mut stalled = TcpStream::connect(&address).unwrap();
    stalled
        .write_all(b"POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut slow_body = TcpStream::connect(&address).unwrap();
    slow_body
        .write_all(
            format!(
                "POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"command\": \"ADD\", "
            )
            .as_bytes(),
        )
        .unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Meanwhile the server serves others.
    let reply = app.get(&format!("/api/v1/users/{USER}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut buf = [0u8; 1024];
    let outcome = stalled.read(&mut buf);
    let waited = started.elapsed();
    match outcome {
        // Closed, perhaps after a 408.
        Ok(n) => assert!(
            n == 0 || buf.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server kept a stalled connection open for {waited:?}"
        ),
    }
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(25),
        "disconnected after {waited:?}"
    );
    let mut answer = Vec::new();
    let _ = slow_body.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"malformed_body\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(25));
    // A new client: the blocking reads above kept this runtime from seeing
    // the server close the old one's idle connection.
    let after = snapshot(&Http::new(app.url.clone())).await;
    assert_eq!(after.account, before.account);
    assert_eq!(after.errors, before.errors);
    assert_eq!(after.transactions, before.transactions);
}

/// A body that never stalls long enough for the idle timeout, one byte
/// every 2 s, is still cut off: a whole body has 10 s to arrive. The
/// answer comes while most of the declared body is still unsent, and
/// nothing changes.
#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_is_cut_off() {
    let (app, _) = setup().await;
    let before = snapshot(&app).await;
    let address = app.url.trim_start_matches("http://").to_owned();
    let mut trickle = TcpStream::connect(&address).unwrap();
    trickle
        .write_all(
            format!(
                "POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut writer = trickle.try_clone().unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let counted = std::sync::Arc::clone(&sent);
    let started = Instant::now();
    std::thread::spawn(move || {
        // Two minutes' worth, far past any deadline; stops when the server
        // has hung up.
        for _ in 0..60 {
            std::thread::sleep(Duration::from_secs(2));
            if writer.write_all(b" ").is_err() {
                break;
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    trickle
        .set_read_timeout(Some(Duration::from_secs(150)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = trickle.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let bytes = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"malformed_body\""), "{answer}");
    assert!(
        bytes < 40,
        "answered only after {bytes} of 200 bytes, {:?}",
        started.elapsed()
    );
    let after = snapshot(&Http::new(app.url.clone())).await;
    assert_eq!(after.account, before.account);
    assert_eq!(after.errors, before.errors);
    assert_eq!(after.transactions, before.transactions);
}
