//! Replays against a fake server that records what arrives, when, and how
//! the requests overlapped, and answers as each test scripts it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use loadgen::{ParsedWorkload, Report, RunOptions, parse_file, parse_str, run};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// How the fake answers one attempt.
enum Reply {
    Accept,
    Status(u16, &'static str),
    /// A 200 whose body breaks off: the connection dies mid-answer.
    Break,
    /// A streamed XML body, in the given chunks.
    Xml(Vec<Bytes>),
    Delay(Duration, Box<Reply>),
    /// Waits until as many requests wait on the same barrier: only a client
    /// that runs them concurrently gets past it.
    Meet(Arc<Barrier>),
}

/// What the fake saw of one request.
#[derive(Clone, Debug)]
struct Arrival {
    body: Value,
    authorization: Option<String>,
    content_type: Option<String>,
    /// Requests being handled when this one arrived.
    in_flight: usize,
    /// Transaction numbers answered before this one arrived.
    answered: HashSet<i64>,
}

type Rule = Box<dyn Fn(&Value, usize) -> Reply + Send + Sync>;

struct Fake {
    /// Decides the reply from the body and the attempt (1 for the first).
    rule: Rule,
    arrivals: Mutex<Vec<Arrival>>,
    attempts: Mutex<HashMap<i64, usize>>,
    answered: Mutex<HashSet<i64>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    users_in_flight: Mutex<HashSet<String>>,
    /// Requests of a user that arrived while another of theirs was in flight.
    overlaps: AtomicUsize,
}

impl Fake {
    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    fn attempts(&self, transaction_num: i64) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .get(&transaction_num)
            .copied()
            .unwrap_or(0)
    }

    fn transaction_nums(&self) -> Vec<i64> {
        self.arrivals().iter().map(|a| tx(&a.body)).collect()
    }
}

fn tx(body: &Value) -> i64 {
    body["transaction_num"].as_i64().unwrap()
}

fn command(body: &Value) -> &str {
    body["command"].as_str().unwrap()
}

async fn handle(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    let transaction_num = tx(&body);
    let user = body.get("user").and_then(Value::as_str).map(str::to_owned);
    let attempt = {
        let mut attempts = fake.attempts.lock().unwrap();
        let n = attempts.entry(transaction_num).or_default();
        *n += 1;
        *n
    };
    let in_flight = fake.in_flight.fetch_add(1, Ordering::SeqCst);
    fake.most_in_flight
        .fetch_max(in_flight + 1, Ordering::SeqCst);
    if let Some(user) = &user
        && !fake.users_in_flight.lock().unwrap().insert(user.clone())
    {
        fake.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    let header = |name| {
        headers
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    fake.arrivals.lock().unwrap().push(Arrival {
        authorization: header(header::AUTHORIZATION),
        content_type: header(header::CONTENT_TYPE),
        in_flight,
        answered: fake.answered.lock().unwrap().clone(),
        body: body.clone(),
    });

    let mut reply = (fake.rule)(&body, attempt);
    let response = loop {
        reply = match reply {
            Reply::Delay(pause, then) => {
                tokio::time::sleep(pause).await;
                *then
            }
            Reply::Meet(barrier) => {
                match tokio::time::timeout(Duration::from_secs(10), barrier.wait()).await {
                    Ok(_) => Reply::Accept,
                    Err(_) => {
                        Reply::Status(500, "the others never came: the client is not concurrent")
                    }
                }
            }
            Reply::Accept => break Json(json!({"ok": true})).into_response(),
            Reply::Status(status, code) => {
                let status = StatusCode::from_u16(status).unwrap();
                let body = if code.starts_with('<') {
                    code.to_owned()
                } else {
                    json!({"error": {"code": code, "message": "refused"}}).to_string()
                };
                break (status, body).into_response();
            }
            Reply::Break => {
                let broken = futures::stream::once(async {
                    Err::<Bytes, io::Error>(io::Error::other("dropped"))
                });
                break Response::new(Body::from_stream(broken));
            }
            Reply::Xml(chunks) => {
                let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, io::Error>));
                break (
                    [(header::CONTENT_TYPE, "application/xml")],
                    Body::from_stream(stream),
                )
                    .into_response();
            }
        };
    };
    if let Some(user) = &user {
        fake.users_in_flight.lock().unwrap().remove(user);
    }
    fake.answered.lock().unwrap().insert(transaction_num);
    fake.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

/// Starts a fake server; returns its base URL.
async fn spawn_fake(
    rule: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Fake>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fake = fake(rule);
    tokio::spawn(serve_fake(listener, Arc::clone(&fake)));
    (url, fake)
}

fn fake(rule: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static) -> Arc<Fake> {
    Arc::new(Fake {
        rule: Box::new(rule),
        arrivals: Mutex::default(),
        attempts: Mutex::default(),
        answered: Mutex::default(),
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
        users_in_flight: Mutex::default(),
        overlaps: AtomicUsize::new(0),
    })
}

async fn serve_fake(listener: TcpListener, fake: Arc<Fake>) {
    let app = Router::new()
        .route("/api/v1/commands", post(handle))
        .with_state(fake);
    axum::serve(listener, app).await.unwrap();
}

fn options(url: &str, out_dir: &Path) -> RunOptions {
    let mut options = RunOptions::new(url, "secret", out_dir);
    options.progress = false;
    options.retries = 3;
    options.request_timeout = Duration::from_secs(10);
    options
}

async fn replay(workload: ParsedWorkload, options: RunOptions) -> Report {
    run(workload, options).await.unwrap()
}

/// Replays the workload `text` against `url` with the usual options; the
/// run's output directory goes with the report.
async fn replay_text(url: &str, text: &str) -> (Report, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let report = replay(parse_str(text), options(url, dir.path())).await;
    (report, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_each_command_as_the_api_expects() {
    let (url, fake) = spawn_fake(|_, _| Reply::Accept).await;
    let dir = tempfile::tempdir().unwrap();
    let workload = parse_str(
        "[1] ADD,u1,-73280.58 \n[2] BUY,u1,abc,200.00\n[3] COMMIT_BUY,u1\n[4] SET_BUY_TRIGGER,u1,ABC,20\n[5] DUMPLOG,u1,mine.xml\n[6] DUMPLOG,./testLOG\n",
    );
    let report = replay(workload, options(&url, dir.path())).await;
    assert!(report.succeeded(), "{report:?}");
    let arrivals = fake.arrivals();
    let bodies: Vec<&Value> = arrivals.iter().map(|a| &a.body).collect();
    assert_eq!(
        bodies,
        vec![
            &json!({"command": "ADD", "user": "u1", "amount": "-73280.58", "transaction_num": 1}),
            &json!({"command": "BUY", "user": "u1", "symbol": "abc", "amount": "200.00", "transaction_num": 2}),
            &json!({"command": "COMMIT_BUY", "user": "u1", "transaction_num": 3}),
            &json!({"command": "SET_BUY_TRIGGER", "user": "u1", "symbol": "ABC", "amount": "20", "transaction_num": 4}),
            &json!({"command": "DUMPLOG", "user": "u1", "filename": "mine.xml", "transaction_num": 5}),
            &json!({"command": "DUMPLOG", "filename": "./testLOG", "transaction_num": 6}),
        ]
    );
    for arrival in &arrivals {
        assert_eq!(arrival.authorization.as_deref(), Some("Bearer secret"));
        assert_eq!(arrival.content_type.as_deref(), Some("application/json"));
    }
    assert_eq!((report.commands, report.accepted, report.users), (6, 6, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_each_users_order_and_waits_for_each_answer() {
    // Answers take 0 to 2 ms, so that a client sending a user's commands
    // without waiting would see them overtake one another.
    let (url, fake) = spawn_fake(|body, _| {
        Reply::Delay(
            Duration::from_millis((tx(body) * 7 % 3) as u64),
            Box::new(Reply::Accept),
        )
    })
    .await;
    let users = ["alice", "bob", "carol", "dave"];
    let mut text = String::new();
    for n in 1..=200 {
        let user = users[(n * 13 % 7) % users.len()];
        text.push_str(&format!("[{n}] QUOTE,{user},S{n} \n"));
    }
    let workload = parse_str(&text);
    let expected: HashMap<String, Vec<i64>> =
        workload.commands.iter().fold(HashMap::new(), |mut m, c| {
            m.entry(c.user.clone().unwrap())
                .or_default()
                .push(c.transaction_num);
            m
        });
    let dir = tempfile::tempdir().unwrap();
    let report = replay(workload, options(&url, dir.path())).await;
    assert_eq!((report.accepted, report.failed), (200, 0));
    let mut arrived: HashMap<String, Vec<i64>> = HashMap::new();
    for arrival in fake.arrivals() {
        arrived
            .entry(arrival.body["user"].as_str().unwrap().to_owned())
            .or_default()
            .push(tx(&arrival.body));
    }
    assert_eq!(arrived, expected);
    assert_eq!(
        fake.overlaps.load(Ordering::SeqCst),
        0,
        "a user had two commands in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_users_concurrently() {
    // Each user's first command waits until all three have arrived.
    let barrier = Arc::new(Barrier::new(3));
    let (url, fake) = spawn_fake(move |body, _| {
        if tx(body) <= 3 {
            Reply::Meet(Arc::clone(&barrier))
        } else {
            Reply::Accept
        }
    })
    .await;
    let workload = parse_str(
        "[1] ADD,a,1\n[2] ADD,b,1\n[3] ADD,c,1\n[4] QUOTE,a,X\n[5] QUOTE,b,X\n[6] QUOTE,c,X\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let report = replay(workload, options(&url, dir.path())).await;
    assert_eq!((report.accepted, report.failed), (6, 0), "{report:?}");
    assert_eq!(report.concurrency, 3);
    assert_eq!(fake.most_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounds_the_users_in_flight() {
    let (url, fake) =
        spawn_fake(|_, _| Reply::Delay(Duration::from_millis(2), Box::new(Reply::Accept))).await;
    let workload = parse_str(
        "[1] ADD,a,1\n[2] ADD,b,1\n[3] ADD,c,1\n[4] QUOTE,a,X\n[5] QUOTE,b,X\n[6] QUOTE,c,X\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    options.concurrency = Some(1);
    let report = replay(workload, options).await;
    assert_eq!(report.accepted, 6);
    assert_eq!(report.concurrency, 1);
    assert_eq!(fake.most_in_flight.load(Ordering::SeqCst), 1);
    // One user at a time, whole: a's commands, then b's, then c's.
    assert_eq!(fake.transaction_nums(), vec![1, 4, 2, 5, 3, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_a_503_with_the_same_transaction_number() {
    let (url, fake) = spawn_fake(|body, attempt| {
        if tx(body) == 2 && attempt == 1 {
            Reply::Status(503, "quotes_unavailable")
        } else {
            Reply::Accept
        }
    })
    .await;
    let (report, _dir) = replay_text(&url, "[1] ADD,a,1\n[2] QUOTE,a,X\n[3] QUOTE,a,Y\n").await;
    assert_eq!(
        (
            report.accepted,
            report.rejected,
            report.failed,
            report.retries
        ),
        (3, 0, 0, 1)
    );
    assert_eq!(fake.transaction_nums(), vec![1, 2, 2, 3]);
    let arrivals = fake.arrivals();
    assert_eq!(arrivals[1].body, arrivals[2].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_on_a_503_after_the_retries() {
    let (url, fake) = spawn_fake(|_, _| Reply::Status(503, "database_unavailable")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    options.retries = 2;
    let report = replay(parse_str("[1] ADD,a,1\n"), options).await;
    assert_eq!((report.accepted, report.failed, report.retries), (0, 1, 2));
    assert_eq!(report.failed_by_reason, [("http_503".to_owned(), 1)].into());
    assert_eq!(fake.attempts(1), 3);
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_an_answer_cut_off_by_a_broken_connection() {
    let (url, fake) = spawn_fake(|body, attempt| {
        if tx(body) == 2 && attempt == 1 {
            Reply::Break
        } else {
            Reply::Accept
        }
    })
    .await;
    let (report, _dir) = replay_text(&url, "[1] ADD,a,1\n[2] QUOTE,a,X\n[3] QUOTE,a,Y\n").await;
    assert_eq!(
        (report.accepted, report.failed, report.retries),
        (3, 0, 1),
        "{report:?}"
    );
    assert_eq!(fake.transaction_nums(), vec![1, 2, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_when_the_connection_is_dropped() {
    // A proxy that drops its first connection as soon as a request comes
    // in, and passes the later ones through to the fake.
    let (url, fake) = spawn_fake(|_, _| Reply::Accept).await;
    let upstream = url.trim_start_matches("http://").to_owned();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let dropped_by_proxy = Arc::clone(&dropped);
    tokio::spawn(async move {
        loop {
            let (mut client, _) = proxy.accept().await.unwrap();
            if dropped_by_proxy.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut buf = [0u8; 16];
                let _ = tokio::io::AsyncReadExt::read(&mut client, &mut buf).await;
                drop(client);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut server = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let report = replay(
        parse_str("[1] ADD,a,1\n[2] QUOTE,a,X\n[3] QUOTE,a,Y\n"),
        options(&proxy_url, dir.path()),
    )
    .await;
    assert_eq!(
        (report.accepted, report.failed, report.retries),
        (3, 0, 1),
        "{report:?}"
    );
    assert_eq!(fake.transaction_nums(), vec![1, 2, 3]);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "one dropped connection, then one kept alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_an_attempt_that_times_out() {
    let (url, fake) = spawn_fake(|body, attempt| {
        if tx(body) == 1 && attempt == 1 {
            Reply::Delay(Duration::from_secs(5), Box::new(Reply::Accept))
        } else {
            Reply::Accept
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    options.request_timeout = Duration::from_millis(200);
    let report = replay(parse_str("[1] ADD,a,1\n[2] QUOTE,a,X\n"), options).await;
    assert_eq!(
        (report.accepted, report.failed, report.retries),
        (2, 0, 1),
        "{report:?}"
    );
    assert_eq!(fake.attempts(1), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_a_server_it_cannot_reach() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    options.retries = 2;
    let report = replay(parse_str("[1] ADD,a,1\n"), options).await;
    assert_eq!((report.failed, report.retries), (1, 2));
    assert_eq!(
        report.failed_by_reason,
        [("connect_failed".to_owned(), 1)].into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_refusals_by_code_and_failures_by_status() {
    let (url, fake) = spawn_fake(|body, _| match command(body) {
        "BUY" => Reply::Status(422, "insufficient_funds"),
        "COMMIT_BUY" | "COMMIT_SELL" => Reply::Status(409, "no_pending_buy"),
        "QUOTE" => Reply::Status(404, "<html>not json</html>"),
        "DISPLAY_SUMMARY" => Reply::Status(500, "internal"),
        _ => Reply::Accept,
    })
    .await;
    let workload = parse_str(
        "[1] ADD,a,1\n[2] BUY,a,X,1\n[3] COMMIT_BUY,a\n[4] COMMIT_SELL,b\nnot a line\n[5] QUOTE,b,X\n[6] DISPLAY_SUMMARY,b\n[7] ADD,b,2\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let report = replay(workload, options(&url, dir.path())).await;
    assert_eq!(report.commands, 7);
    assert_eq!(
        (
            report.accepted,
            report.rejected,
            report.failed,
            report.retries
        ),
        (2, 4, 1, 0)
    );
    assert_eq!(
        report.rejected_by_code,
        [
            ("insufficient_funds".to_owned(), 1),
            ("no_pending_buy".to_owned(), 2),
            ("unknown".to_owned(), 1)
        ]
        .into()
    );
    assert_eq!(report.failed_by_reason, [("http_500".to_owned(), 1)].into());
    assert_eq!(fake.attempts(6), 1, "a 500 is not retried");
    assert_eq!((report.malformed_lines, report.malformed[0].line), (1, 5));
    assert_eq!(report.users, 2);
    assert_eq!(report.timeline.iter().sum::<u64>(), 7);
    assert!(report.throughput_per_s > 0.0 && report.duration_s > 0.0);
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_latency_from_send_to_answer() {
    // Answers delayed by 10, 20, ..., 100 ms: the percentiles cannot be
    // below those delays, and come in order.
    let (url, _fake) = spawn_fake(|body, _| {
        Reply::Delay(
            Duration::from_millis(tx(body) as u64 * 10),
            Box::new(Reply::Accept),
        )
    })
    .await;
    let text: String = (1..=10).map(|n| format!("[{n}] QUOTE,a,X\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let report = replay(parse_str(&text), options(&url, dir.path())).await;
    let l = report.latency_ms;
    assert!(
        l.p50 >= 50.0 && l.p90 >= 90.0 && l.max >= 100.0 && l.mean >= 55.0,
        "{l:?}"
    );
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, "{l:?}");
    assert!(
        l.p50 < 100.0,
        "the median is the fifth answer, not the last: {l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_sends_on_schedule_and_counts_lateness() {
    // Users a and b alternate, one command due every 5 ms. The fifth
    // command (a's) takes 60 ms: a's next ones are due before it is
    // answered, so they start late and their latency counts from when they
    // were due.
    let (url, fake) = spawn_fake(|body, _| {
        let delay = if tx(body) == 5 { 60 } else { 0 };
        Reply::Delay(Duration::from_millis(delay), Box::new(Reply::Accept))
    })
    .await;
    let text: String = (1..=20)
        .map(|n| format!("[{n}] QUOTE,{},X\n", if n % 2 == 1 { "a" } else { "b" }))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    options.rate = Some(200.0);
    let report = replay(parse_str(&text), options).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.accepted, 20);
    let open = report.open_loop.expect("an open-loop run says so");
    assert_eq!(open.rate_per_s, 200.0);
    assert!(open.behind_schedule >= 1, "{open:?}");
    // The last command is not sent before it is due, 19 intervals in.
    assert!(report.duration_s >= 0.095, "{report:?}");
    assert!(
        report.latency_ms.max >= open.service_latency_ms.max,
        "latency from the due time includes the service time: {report:?}"
    );
    let order = |user: &str| -> Vec<i64> {
        fake.arrivals()
            .iter()
            .filter(|a| a.body["user"] == user)
            .map(|a| tx(&a.body))
            .collect()
    };
    assert_eq!(order("a"), (1..=20).step_by(2).collect::<Vec<i64>>());
    assert_eq!(order("b"), (2..=20).step_by(2).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_rate_that_is_not_positive() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut options = options("http://127.0.0.1:9", dir.path());
        options.rate = Some(rate);
        let error = run(parse_str("[1] QUOTE,a,X\n"), options)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("rate"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_dumplog_is_a_barrier_and_its_log_is_saved() {
    let xml: Vec<Bytes> = (0..200)
        .map(|i| {
            Bytes::from(format!(
                "<userCommand><transactionNum>{i}</transactionNum>{}</userCommand>\n",
                "x".repeat(5_000)
            ))
        })
        .collect();
    let whole: Vec<u8> = xml.iter().flat_map(|c| c.to_vec()).collect();
    let (url, fake) = spawn_fake(move |body, _| {
        if command(body) == "DUMPLOG" {
            // Slow, so that a client that did not wait for it would be seen
            // sending later commands meanwhile.
            Reply::Delay(Duration::from_millis(50), Box::new(Reply::Xml(xml.clone())))
        } else {
            Reply::Delay(
                Duration::from_millis(tx(body) as u64 % 3),
                Box::new(Reply::Accept),
            )
        }
    })
    .await;
    let workload = parse_str(
        "[1] ADD,a,1\n[2] ADD,b,1\n[3] QUOTE,a,X\n[4] QUOTE,b,X\n[5] QUOTE,a,Y\n[6] DUMPLOG,./testLOG\n[7] QUOTE,a,Z\n[8] QUOTE,b,Z\n[9] DUMPLOG,logs/final.xml\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = replay(workload, options(&url, &out)).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.accepted, 9);

    let arrivals = fake.arrivals();
    let dumplog = arrivals.iter().find(|a| tx(&a.body) == 6).unwrap();
    assert_eq!(dumplog.in_flight, 0);
    assert_eq!(dumplog.answered, (1..=5).collect());
    for later in arrivals.iter().filter(|a| matches!(tx(&a.body), 7 | 8)) {
        assert!(
            later.answered.contains(&6),
            "{} came before the DUMPLOG's answer",
            tx(&later.body)
        );
    }

    assert_eq!(std::fs::read(out.join("testLOG")).unwrap(), whole);
    assert_eq!(std::fs::read(out.join("logs/final.xml")).unwrap(), whole);
    let saved: Vec<(&str, u64, i64)> = report
        .dumplogs
        .iter()
        .map(|d| (d.filename.as_str(), d.bytes, d.transaction_num))
        .collect();
    assert_eq!(
        saved,
        vec![
            ("./testLOG", whole.len() as u64, 6),
            ("logs/final.xml", whole.len() as u64, 9)
        ]
    );
    assert_eq!(report.dumplogs[0].path, out.join("testLOG"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_dumplog_with_a_refused_name_but_writes_nothing() {
    let (url, fake) = spawn_fake(|body, _| {
        if command(body) == "DUMPLOG" {
            Reply::Xml(vec![Bytes::from_static(b"<log/>")])
        } else {
            Reply::Accept
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = replay(
        parse_str("[1] ADD,a,1\n[2] DUMPLOG,../evil\n[3] DUMPLOG,/etc/passwd-loadgen\n"),
        options(&url, &out),
    )
    .await;
    assert_eq!(fake.transaction_nums(), vec![1, 2, 3]);
    assert_eq!(report.accepted, 3);
    assert!(report.dumplogs.is_empty());
    let refused: Vec<(usize, Option<&str>)> = report
        .dumplog_errors
        .iter()
        .map(|e| (e.line, e.filename.as_deref()))
        .collect();
    assert_eq!(
        refused,
        vec![(2, Some("../evil")), (3, Some("/etc/passwd-loadgen"))]
    );
    assert!(!dir.path().join("evil").exists());
    assert!(!Path::new("/etc/passwd-loadgen").exists());
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_a_log_it_could_not_write() {
    let (url, fake) = spawn_fake(|body, _| {
        if command(body) == "DUMPLOG" {
            Reply::Xml(vec![Bytes::from_static(b"<log/>"); 1000])
        } else {
            Reply::Accept
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // A directory where the log should go: the file cannot be created.
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let report = replay(
        parse_str("[1] DUMPLOG,taken\n[2] ADD,a,1\n[3] DUMPLOG,./ok\n"),
        options(&url, dir.path()),
    )
    .await;
    assert_eq!(fake.transaction_nums(), vec![1, 2, 3]);
    assert_eq!((report.accepted, report.failed), (3, 0));
    assert_eq!(report.dumplog_errors.len(), 1);
    assert_eq!(report.dumplog_errors[0].line, 1);
    assert!(
        report.dumplog_errors[0].error.contains("taken"),
        "{:?}",
        report.dumplog_errors
    );
    assert_eq!(std::fs::read(dir.path().join("ok")).unwrap().len(), 6000);
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_targets_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    for target in ["https://127.0.0.1:9999", "127.0.0.1:9999", "not a url"] {
        let result = run(parse_str("[1] ADD,a,1\n"), options(target, dir.path())).await;
        assert!(result.is_err(), "{target}");
    }
    let mut zero = options("http://127.0.0.1:9", dir.path());
    zero.concurrency = Some(0);
    assert!(run(ParsedWorkload::default(), zero).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_the_one_user_course_file_when_present() {
    let Some(file) = loadgen::testing::course_file("1userWorkLoad.txt") else {
        return;
    };
    let (url, fake) = spawn_fake(|body, _| {
        if command(body) == "DUMPLOG" {
            Reply::Xml(vec![Bytes::from_static(
                b"<?xml version=\"1.0\"?><log></log>\n",
            )])
        } else {
            Reply::Accept
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let report = replay(parse_file(&file).unwrap(), options(&url, dir.path())).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        (report.commands, report.accepted, report.users),
        (100, 100, 1)
    );
    assert_eq!(fake.transaction_nums(), (1..=100).collect::<Vec<_>>());
    assert!(
        std::fs::read_to_string(dir.path().join("testLOG"))
            .unwrap()
            .contains("<log>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_run_at_once() {
    let (url, fake) = spawn_fake(|_, _| Reply::Status(401, "unauthorized")).await;
    let text: String = (1..=60)
        .map(|n| format!("[{n}] ADD,{},1\n", ["a", "b", "c"][n % 3]))
        .chain(["[61] DUMPLOG,./testLOG\n".to_owned()])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let report = replay(parse_str(&text), options(&url, dir.path())).await;
    let why = report.stopped.clone().expect("the run stopped");
    assert!(why.contains("401") && why.contains("token"), "{why}");
    // At most one command per user in flight when the first 401 came back.
    assert!(fake.arrivals().len() <= 3, "{} sent", fake.arrivals().len());
    assert_eq!(report.retries, 0, "a refused token is not retried");
    assert_eq!(report.commands, 61);
    assert!(report.not_sent >= 58, "{report:?}");
    assert_eq!(
        report.failed_by_reason.get("http_401"),
        Some(&report.failed)
    );
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_may_not_act_for_the_users_stops_the_run_too() {
    let (url, _fake) = spawn_fake(|_, _| Reply::Status(403, "forbidden")).await;
    let (report, _dir) = replay_text(&url, "[1] ADD,a,1\n[2] ADD,a,2\n[3] ADD,a,3\n").await;
    let why = report.stopped.clone().expect("the run stopped");
    assert!(why.contains("403") && why.contains("user a"), "{why}");
    assert_eq!((report.failed, report.not_sent), (1, 2));
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dumplog_that_saved_nothing_fails_the_run() {
    let (url, _fake) = spawn_fake(|body, _| {
        if command(body) == "DUMPLOG" {
            Reply::Status(404, "unknown_user")
        } else {
            Reply::Accept
        }
    })
    .await;
    let (report, dir) = replay_text(&url, "[1] ADD,a,1\n[2] DUMPLOG,b,./b.xml\n").await;
    assert_eq!((report.accepted, report.rejected, report.failed), (1, 1, 0));
    assert_eq!(report.dumplog_errors.len(), 1, "{report:?}");
    assert_eq!(report.dumplog_errors[0].line, 2);
    assert!(
        report.dumplog_errors[0].error.contains("unknown_user"),
        "{:?}",
        report.dumplog_errors
    );
    assert!(!dir.path().join("b.xml").exists());
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_stops_the_run_once_it_outlasts_the_deadline() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let text: String = (1..=200).map(|n| format!("[{n}] ADD,a,1\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    // Many retries: the deadline is what bounds each command.
    options.retries = 1_000;
    options.deadline = Duration::from_millis(1_500);
    let report = replay(parse_str(&text), options).await;
    let why = report.stopped.clone().expect("the run stopped");
    assert!(why.contains(&format!("cannot connect to {url}")), "{why}");
    assert!(
        report.retries < 50,
        "retries bounded by the deadline: {}",
        report.retries
    );
    assert_eq!(
        report.failed_by_reason.get("connect_failed"),
        Some(&report.failed)
    );
    assert!(report.not_sent >= 190, "{report:?}");
    assert!(!report.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shorter_than_the_deadline_is_ridden_out() {
    // The first attempts of the first command find nothing listening; the
    // server comes up a moment later.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}");
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = TcpListener::bind(address).await.unwrap();
        serve_fake(listener, fake(|_, _| Reply::Accept)).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&url, dir.path());
    options.retries = 1_000;
    options.deadline = Duration::from_secs(20);
    let report = replay(parse_str("[1] ADD,a,1\n[2] ADD,a,2\n"), options).await;
    starter.abort();
    assert!(report.succeeded(), "{report:?}");
    assert!(report.retries >= 1, "{report:?}");
    assert_eq!(report.stopped, None);
}
