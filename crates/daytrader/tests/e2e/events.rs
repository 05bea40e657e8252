//! The live event stream, `GET /api/v1/users/{user}/events` (SPEC 4b):
//! account events after commands, notification events when triggers
//! execute, quote events for the symbols a user watches, keep-alive
//! comments, resuming with `Last-Event-ID`, the per-user bound, who may
//! listen, and events crossing instances of a cluster.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::cluster::cluster;
use crate::helpers::{Http, Options, TOKEN, spawn_with};
use crate::infra::{PrivateRedis, TestDatabase, unique};
use crate::local_cluster::LocalCluster;
use crate::web::{Browser, make_token};

/// How a stream authenticates.
pub enum Caller<'a> {
    Token(&'a str),
    Cookie(&'a str),
}

/// What a stream sends, one block at a time.
#[derive(Debug)]
pub enum Item {
    /// A comment line's text (the keep-alive's).
    Comment(#[allow(dead_code)] String),
    Retry,
    Event {
        id: Option<String>,
        data: Value,
    },
}

/// One open event stream.
pub struct EventStream {
    body: hyper::body::Incoming,
    pub headers: hyper::HeaderMap,
    buffer: String,
}

/// A refused stream: its status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl EventStream {
    pub async fn open(
        base: &str,
        user: &str,
        caller: Caller<'_>,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, Refused> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut request = hyper::Request::get(format!("{base}/api/v1/users/{user}/events"))
            .header("accept", "text/event-stream");
        request = match caller {
            Caller::Token(token) => request.header("authorization", format!("Bearer {token}")),
            Caller::Cookie(cookie) => request.header("cookie", cookie),
        };
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = client
            .request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .expect("the instance answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if status != 200 {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            return Err(Refused {
                status,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
        }
        Ok(EventStream {
            body: response.into_body(),
            headers,
            buffer: String::new(),
        })
    }

    /// The stream of `user` on the instance at `base`, opened with the
    /// supervisor's token (which may listen for anyone).
    pub async fn of(base: &str, user: &str) -> EventStream {
        Self::resume(base, user, None).await
    }

    /// As [`EventStream::of`], resuming after the event `last_event_id`.
    pub async fn resume(base: &str, user: &str, last_event_id: Option<&str>) -> EventStream {
        EventStream::open(base, user, Caller::Token(TOKEN), last_event_id)
            .await
            .unwrap_or_else(|refused| panic!("the stream of {user} opens: {refused:?}"))
    }

    /// The next block, or `None` if none came within `limit` or the stream
    /// ended.
    pub async fn item(&mut self, limit: Duration) -> Option<Item> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse_block(&block));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// Whether the stream ends (the server closes it) within `limit`.
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next event (comments and hints skipped), within `limit`.
    pub async fn event(&mut self, limit: Duration) -> (Option<String>, Value) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.item(left).await {
                Some(Item::Event { id, data }) => return (id, data),
                Some(_) => continue,
                None => panic!("no event within {limit:?}"),
            }
        }
    }

    /// The next event of `kind`, skipping others, within `limit`.
    pub async fn event_of(&mut self, kind: &str, limit: Duration) -> (Option<String>, Value) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (id, data) = self.event(left).await;
            if data["type"] == kind {
                return (id, data);
            }
        }
    }
}

fn parse_block(block: &str) -> Item {
    let mut id = None;
    let mut data = String::new();
    let mut comment = None;
    let mut retry = false;
    for line in block.lines() {
        if let Some(text) = line.strip_prefix(':') {
            comment = Some(text.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        } else if line.starts_with("retry:") {
            retry = true;
        }
    }
    if !data.is_empty() {
        let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
        Item::Event { id, data }
    } else if retry {
        Item::Retry
    } else {
        Item::Comment(comment.unwrap_or_default())
    }
}

const WAIT: Duration = Duration::from_secs(10);

async fn ok(http: &Http, command: Value) -> Value {
    let reply = http.command(command).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// ADDs `amount` to `user`'s account, which must succeed.
async fn add(http: &Http, user: &str, amount: &str) -> Value {
    ok(
        http,
        json!({"command": "ADD", "user": user, "amount": amount}),
    )
    .await
}

#[tokio::test]
async fn a_traders_stream_carries_their_commands_notifications_and_prices() {
    let app = spawn_with(Options {
        env: vec![
            ("QUOTE_TTL_SECS", "1".into()),
            ("TRIGGER_REFRESH_SECS", "1".into()),
            ("EVENTS_KEEPALIVE_MS", "300".into()),
        ],
        ..Options::default()
    });
    let user = unique("live");
    let mut browser = Browser::new(app.client());
    browser.register(&user).await;
    let (token, _) = make_token(&mut browser, "live").await;

    let mut stream = EventStream::open(&app.url, &user, Caller::Token(&token), None)
        .await
        .expect("the trader may stream their events");
    assert_eq!(
        stream.headers["content-type"], "text/event-stream",
        "{:?}",
        stream.headers
    );
    assert_eq!(stream.headers["cache-control"], "no-cache");
    assert_eq!(stream.headers["x-accel-buffering"], "no");

    // An idle stream gets keep-alive comments on the configured interval.
    let mut comments = 0;
    while comments < 2 {
        match stream.item(WAIT).await.expect("the stream stays open") {
            Item::Comment(_) => comments += 1,
            Item::Retry => {}
            other => panic!("an idle stream sent {other:?}"),
        }
    }

    // A command: its account event.
    let added = ok(
        &app,
        json!({"command": "ADD", "user": user, "amount": "1000.00", "transaction_num": 41}),
    )
    .await;
    let (id, account) = stream.event(WAIT).await;
    assert!(id.is_some(), "account events carry ids");
    assert_eq!(
        account,
        json!({"type": "account", "transaction_num": 41, "command": "ADD", "outcome": "ok",
               "cash": "1000.00", "reserved_cash": "0.00"}),
        "after {added}"
    );
    // A refused command too, with its error code.
    let refused = app
        .command(json!({"command": "COMMIT_BUY", "user": user, "transaction_num": 42}))
        .await;
    let (_, account) = stream.event(WAIT).await;
    assert_eq!(account["transaction_num"], 42);
    assert_eq!(account["outcome"], refused.code(), "{}", refused.text());

    // A buy trigger armed at a price already met executes at once: its
    // notification arrives as the notifications list shows it.
    let price = ok(
        &app,
        json!({"command": "QUOTE", "user": user, "symbol": "EVT"}),
    )
    .await["result"]["price"]
        .as_str()
        .unwrap()
        .to_owned();
    let above =
        engine::Money::from_cents(engine::Money::parse_decimal(&price).unwrap().cents() + 100);
    ok(
        &app,
        json!({"command": "SET_BUY_AMOUNT", "user": user, "symbol": "EVT", "amount": "100.00"}),
    )
    .await;
    ok(&app, json!({"command": "SET_BUY_TRIGGER", "user": user, "symbol": "EVT", "amount": above.to_string()})).await;
    let (id, notification) = stream.event_of("notification", WAIT).await;
    assert!(id.is_some());
    let listed = app
        .get(&format!("/api/v1/users/{user}/notifications"))
        .await
        .json();
    let mut expected = listed["notifications"][0].clone();
    expected["type"] = json!("notification");
    assert_eq!(notification, expected);
    assert_eq!(notification["kind"], "trigger_executed");

    // The trader now holds EVT: its next fetched price (the cached one
    // lives a second) arrives too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ok(
        &app,
        json!({"command": "QUOTE", "user": user, "symbol": "EVT"}),
    )
    .await;
    let (id, quote) = stream.event_of("quote", WAIT).await;
    assert_eq!(id, None, "quote events carry no id");
    assert_eq!(quote["symbol"], "EVT");
    assert_eq!(quote["price"], price);
    assert!(quote["at"].as_i64().unwrap() > 1_700_000_000_000, "{quote}");
}

/// The trigger engine's steps publish too: with moving prices, one of two
/// triggers fires on a new price, and its owner's stream hears of it.
#[tokio::test]
async fn a_trigger_fired_by_a_new_price_reaches_its_owners_stream() {
    let app = crate::triggers::spawn_with_moving_prices();
    let mut streams = Vec::new();
    for user in ["seller", "buyer"] {
        add(&app, user, "1.00").await;
        let stream = EventStream::of(&app.url, user).await;
        streams.push(stream);
    }
    let fired = crate::triggers::arm_both_sides_and_wait(&app).await;
    let (owner, index) = match fired {
        "SET_SELL_TRIGGER" => ("seller", 0),
        _ => ("buyer", 1),
    };
    // The newest notification is the price's (a trigger may also have
    // executed at once while arming, which is a command's).
    let listed = app
        .get(&format!("/api/v1/users/{owner}/notifications"))
        .await
        .json();
    let newest = &listed["notifications"][0];
    loop {
        let (_, notification) = streams[index].event_of("notification", WAIT).await;
        if notification["id"] == newest["id"] {
            assert_eq!(notification["kind"], "trigger_executed", "{notification}");
            break;
        }
    }
}

#[tokio::test]
async fn a_reconnecting_stream_gets_what_it_missed() {
    let app = spawn_with(Options::default());
    let user = unique("resume");
    add(&app, &user, "1.00").await;
    let mut stream = EventStream::of(&app.url, &user).await;
    add(&app, &user, "2.00").await;
    let (seen, first) = stream.event(WAIT).await;
    assert_eq!(first["cash"], "3.00");
    drop(stream);

    // Missed while away: two commands.
    add(&app, &user, "3.00").await;
    add(&app, &user, "4.00").await;
    let mut resumed = EventStream::resume(&app.url, &user, seen.as_deref()).await;
    let (_, missed) = resumed.event(WAIT).await;
    assert_eq!(missed["cash"], "6.00");
    let (last, missed) = resumed.event(WAIT).await;
    assert_eq!(missed["cash"], "10.00");
    // Then live again, nothing twice.
    add(&app, &user, "5.00").await;
    let (next, live) = resumed.event(WAIT).await;
    assert_eq!(live["cash"], "15.00");
    assert_ne!(next, last);

    // An id the ring never held replays nothing: the client resyncs.
    let mut stale = EventStream::resume(&app.url, &user, Some("1.999")).await;
    add(&app, &user, "6.00").await;
    let (_, fresh) = stale.event(WAIT).await;
    assert_eq!(fresh["cash"], "21.00");
}

#[tokio::test]
async fn streams_are_bounded_per_user_and_only_for_their_owner() {
    let app = spawn_with(Options {
        env: vec![("EVENTS_PER_USER", "2".into())],
        ..Options::default()
    });
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut alices = Browser::new(app.client());
    alices.register(&alice).await;
    let (alice_token, _) = make_token(&mut alices, "a").await;
    let mut bobs = Browser::new(app.client());
    bobs.register(&bob).await;

    // Another trader's token, no credentials, a visitor's cookie: refused.
    let theirs = EventStream::open(&app.url, &bob, Caller::Token(&alice_token), None).await;
    assert_eq!(theirs.err().unwrap().status, 403);
    let nobody = EventStream::open(&app.url, &bob, Caller::Cookie("dt_session=x"), None).await;
    assert_eq!(nobody.err().unwrap().status, 401);
    let alices_cookie = alices.cookie.clone().unwrap();
    let crossed = EventStream::open(&app.url, &bob, Caller::Cookie(&alices_cookie), None).await;
    assert_eq!(crossed.err().unwrap().status, 403);
    let unknown = EventStream::open(&app.url, &unique("ghost"), Caller::Token(TOKEN), None).await;
    assert_eq!(unknown.err().unwrap().status, 404);

    // The session cookie works, as a page's EventSource uses it; two
    // streams are the most, and closing one frees its place.
    let _first = EventStream::open(&app.url, &alice, Caller::Cookie(&alices_cookie), None)
        .await
        .expect("the session may stream its trader's events");
    let second = EventStream::open(&app.url, &alice, Caller::Token(&alice_token), None)
        .await
        .unwrap();
    let third = EventStream::open(&app.url, &alice, Caller::Token(&alice_token), None).await;
    let refused = third.err().unwrap();
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "too_many_streams");
    drop(second);
    let mut again = None;
    for _ in 0..50 {
        match EventStream::open(&app.url, &alice, Caller::Token(&alice_token), None).await {
            Ok(stream) => {
                again = Some(stream);
                break;
            }
            Err(refused) => assert_eq!(refused.status, 429),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a closed stream frees its place");
    // Bob's own stream is not counted against Alice.
    let bobs_cookie = bobs.cookie.clone().unwrap();
    EventStream::open(&app.url, &bob, Caller::Cookie(&bobs_cookie), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_on_one_instance_reaches_a_stream_on_another() {
    let Some(cluster) = cluster() else { return };
    let one = cluster.instance("events-1", &[]);
    let two = cluster.instance("events-2", &[]);
    let user = unique("across");
    add(&two, &user, "1.00").await;
    let mut stream = EventStream::of(&one.url, &user).await;
    for round in 1..=3 {
        let sent = Instant::now();
        add(&two, &user, "1.00").await;
        let (id, event) = stream.event(WAIT).await;
        let took = sent.elapsed();
        assert_eq!(event["cash"], format!("{}.00", round + 1));
        assert!(id.is_some());
        // SPEC 4b: within a second, from the command sent.
        assert!(took < Duration::from_secs(1), "round {round} took {took:?}");
    }
}

/// A price fetched on one instance reaches the streams on another, for
/// the users watching its symbol only.
#[tokio::test]
async fn a_price_fetched_on_one_instance_reaches_a_stream_on_another() {
    let Some(cluster) = cluster() else { return };
    let one = cluster.instance("quotes-1", &[("QUOTE_TTL_SECS", "1")]);
    let two = cluster.instance("quotes-2", &[("QUOTE_TTL_SECS", "1")]);
    let (watcher, other) = (unique("watcher"), unique("other"));
    for user in [&watcher, &other] {
        add(&one, user, "100.00").await;
    }
    ok(
        &one,
        json!({"command": "SET_BUY_AMOUNT", "user": watcher, "symbol": "QEV", "amount": "10.00"}),
    )
    .await;
    let mut watching = EventStream::of(&one.url, &watcher).await;
    let mut not_watching = EventStream::of(&one.url, &other).await;
    // Past the cached price's second, so that the quote is fetched.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let quoted = ok(
        &two,
        json!({"command": "QUOTE", "user": other, "symbol": "QEV"}),
    )
    .await;
    let (_, quote) = watching.event_of("quote", WAIT).await;
    assert_eq!(quote["symbol"], "QEV");
    assert_eq!(quote["price"], quoted["result"]["price"]);
    // The other trader hears of their own QUOTE command only.
    let (_, account) = not_watching.event(WAIT).await;
    assert_eq!(account["command"], "QUOTE");
    while let Some(item) = not_watching.item(Duration::from_secs(1)).await {
        assert!(!matches!(item, Item::Event { .. }), "{item:?}");
    }
}

/// In a cluster the rings are in Redis: a stream that reconnects to
/// another instance resumes there.
#[tokio::test]
async fn a_stream_resumes_on_another_instance() {
    let Some(cluster) = cluster() else { return };
    let one = cluster.instance("resume-1", &[]);
    let two = cluster.instance("resume-2", &[]);
    let user = unique("moving");
    add(&one, &user, "1.00").await;
    let mut stream = EventStream::of(&one.url, &user).await;
    add(&one, &user, "1.00").await;
    let (seen, _) = stream.event(WAIT).await;
    drop(stream);
    add(&one, &user, "1.00").await;
    add(&two, &user, "1.00").await;
    let mut resumed = EventStream::resume(&two.url, &user, seen.as_deref()).await;
    assert_eq!(resumed.event(WAIT).await.1["cash"], "3.00");
    assert_eq!(resumed.event(WAIT).await.1["cash"], "4.00");
    add(&one, &user, "1.00").await;
    assert_eq!(resumed.event(WAIT).await.1["cash"], "5.00");
}

/// When Redis goes, the streams of a cluster end (they may miss events);
/// commands go on. When it is back, the instances' subscriber connections
/// come back by themselves and new streams carry events across instances
/// again.
#[tokio::test]
async fn streams_come_back_with_redis() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let instance = |id: &str| {
        spawn_with(Options {
            env: vec![
                ("DATABASE_URL", db.url.clone()),
                ("REDIS_URL", redis.url()),
                ("INSTANCE_ID", id.to_owned()),
            ],
            ..Options::default()
        })
    };
    let (one, two) = (instance("outage-1"), instance("outage-2"));
    let user = unique("outage");
    add(&two, &user, "1.00").await;
    let mut stream = EventStream::of(&one.url, &user).await;
    add(&two, &user, "1.00").await;
    // Events go to Redis after the answer, so the first ADD's may reach a
    // stream opened just after it: skip that one.
    let (_, mut event) = stream.event(WAIT).await;
    if event["cash"] == "1.00" {
        event = stream.event(WAIT).await.1;
    }
    assert_eq!(event["cash"], "2.00");

    redis.stop();
    assert!(
        stream.ends_within(WAIT).await,
        "a stream that may miss events ends"
    );
    add(&two, &user, "1.00").await;

    redis.resume().unwrap();
    // Until the subscriber is back a new stream may open and hear nothing:
    // try until one carries an event from the other instance.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cents = 300;
    loop {
        assert!(Instant::now() < deadline, "events never crossed again");
        let Ok(mut stream) = EventStream::open(&one.url, &user, Caller::Token(TOKEN), None).await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        add(&two, &user, "1.00").await;
        cents += 100;
        let expected = format!("{}.00", cents / 100);
        let crossed = loop {
            match stream.item(Duration::from_secs(2)).await {
                Some(Item::Event { data, .. }) => break data["cash"] == expected.as_str(),
                Some(_) => continue,
                None => break false,
            }
        };
        if crossed {
            break;
        }
    }
    let logs = one.logs().join("\n");
    assert!(logs.contains("lost Redis"), "{logs}");
}

/// Graceful shutdown waits for requests in flight, and a stream is one: it
/// must end when the instance stops, or the instance would never stop.
#[tokio::test]
async fn a_stopping_instance_ends_its_streams() {
    let mut app = spawn_with(Options::default());
    let user = unique("stop");
    add(&app, &user, "1.00").await;
    let mut stream = EventStream::of(&app.url, &user).await;
    assert!(matches!(stream.item(WAIT).await, Some(Item::Retry)));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(app.pid() as libc::pid_t, libc::SIGTERM) };
    assert!(
        stream.ends_within(Duration::from_secs(20)).await,
        "the stream ends when the instance stops"
    );
    let stopped = tokio::task::spawn_blocking(move || app.terminate());
    let status = tokio::time::timeout(Duration::from_secs(20), stopped)
        .await
        .expect("the instance stops")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// Through a balancer, a stream is passed on as it comes (no buffering)
/// and stays open past the balancer's 30 s inactivity timeouts (HAProxy's
/// and nginx's; pen has none) on the keep-alive comments alone (every 15 s
/// by default).
async fn a_stream_stays_open_through(lb: &str) {
    let Some(cluster) = LocalCluster::up(lb, 2, &[]) else {
        return;
    };
    let token = cluster.token().to_owned();
    let user = unique("lb");
    let add = |amount: &str| {
        let body = json!({"command": "ADD", "user": user, "amount": amount});
        cluster.request(
            hyper::Method::POST,
            "/api/v1/commands",
            Some(&token),
            Some(("application/json", body.to_string().into_bytes())),
        )
    };
    assert_eq!(add("1.00").await.status, 200);
    let mut stream = EventStream::open(&cluster.url, &user, Caller::Token(&token), None)
        .await
        .unwrap();
    assert_eq!(add("2.00").await.status, 200);
    let (_, event) = stream.event(WAIT).await;
    assert_eq!(event["cash"], "3.00", "{event}");

    let quiet_until = Instant::now() + Duration::from_secs(35);
    let mut comments = 0;
    while Instant::now() < quiet_until {
        match stream.item(Duration::from_secs(20)).await {
            Some(Item::Comment(_)) => comments += 1,
            other => panic!("{lb}: expected keep-alive comments, got {other:?}"),
        }
    }
    assert!(comments >= 2, "{lb}: {comments} keep-alive comments");
    assert_eq!(add("4.00").await.status, 200);
    let (_, event) = stream.event(WAIT).await;
    assert_eq!(event["cash"], "7.00", "{lb}: {event}");
}

#[tokio::test]
async fn a_stream_stays_open_through_haproxy() {
    a_stream_stays_open_through("haproxy").await;
}

#[tokio::test]
async fn a_stream_stays_open_through_nginx() {
    a_stream_stays_open_through("nginx").await;
}

#[tokio::test]
async fn a_stream_stays_open_through_pen() {
    a_stream_stays_open_through("pen").await;
}
