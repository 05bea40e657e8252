//! The cluster data tier: instances over one PostgreSQL and one Redis give
//! exactly the embedded results, share one quote cache, serialize each
//! user's commands across instances, survive Redis and database outages,
//! and run the trigger engine in one leading worker at a time.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{App, BIN, Options, QuoteServer, generate_workload, spawn_with};
use crate::infra::{PrivatePostgres, PrivateRedis, TestDatabase, shared_redis, unique};
use crate::oracle::{assert_summaries_are, expected};

/// One PostgreSQL database and one Redis prefix, for the instances of one test.
pub struct Cluster {
    db: TestDatabase,
    redis: String,
    prefix: String,
}

pub fn cluster() -> Option<Cluster> {
    Some(Cluster {
        db: TestDatabase::create()?,
        redis: shared_redis()?,
        prefix: unique("e2e:"),
    })
}

impl Cluster {
    fn env(&self, instance: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.db.url.clone()),
            ("REDIS_URL", self.redis.clone()),
            ("REDIS_PREFIX", self.prefix.clone()),
            ("INSTANCE_ID", instance.to_owned()),
        ]
    }

    pub fn instance(&self, id: &str, extra: &[(&'static str, &str)]) -> App {
        let mut env = self.env(id);
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        spawn_with(Options {
            env,
            ..Options::default()
        })
    }

    pub fn worker(&self, id: &str, extra: &[(&'static str, &str)]) -> App {
        let mut env = self.env(id);
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        spawn_with(Options {
            env,
            worker: true,
            ..Options::default()
        })
    }

    /// `daytrader audit verify` on this cluster's database.
    pub fn audit(&self) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["audit", "verify"])
            .env("DATABASE_URL", &self.db.url)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// Every user of `file` has exactly the engine's summary on `app`.
async fn assert_matches_engine(app: &App, file: &Path) {
    assert_summaries_are(app, &expected(file).accounts).await;
}

#[tokio::test]
async fn a_cluster_gives_the_embedded_results_and_keeps_them_across_restarts() {
    let Some(cluster) = cluster() else { return };
    let mut first = cluster.instance("pg-1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 20, 4_000, 5);
    let hand = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/1userWorkLoad.txt");
    for workload in [&file, &hand] {
        let (report, out) = first.replay(workload).await;
        assert_eq!(report["failed"], 0, "{report:#}");
        let expected = expected(workload);
        let rejected: std::collections::BTreeMap<String, u64> =
            serde_json::from_value(report["rejected_by_code"].clone()).unwrap();
        assert_eq!(rejected, expected.rejected_by_code);
        crate::helpers::assert_valid_log(&out.join("testLOG"));
        assert_matches_engine(&first, workload).await;
    }
    assert_eq!(
        first.get("/api/v1/users/oY01WVirLr").await.json()["cash"],
        "390568.01"
    );
    assert!(first.terminate().success());

    // Every instance restarted: the same state, and it still verifies.
    let second = cluster.instance("pg-2", &[]);
    assert_matches_engine(&second, &file).await;
    assert_matches_engine(&second, &hand).await;
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");
}

#[tokio::test]
async fn two_instances_fetch_each_symbol_once_in_all() {
    let Some(cluster) = cluster() else { return };
    let Some(file) = crate::helpers::course_file("45User_testWorkLoad.txt") else {
        return;
    };
    let replaying = cluster.instance("pg-a", &[]);
    let asking = cluster.instance("pg-b", &[]);
    let (report, _) = replaying.replay(&file).await;
    assert_eq!(report["failed"], 0);
    assert_matches_engine(&replaying, &file).await;

    let symbols: BTreeSet<String> = loadgen::parse_file(&file)
        .unwrap()
        .commands
        .iter()
        .filter_map(|c| c.symbol.clone())
        .collect();
    for symbol in &symbols {
        let reply = asking.get(&format!("/api/v1/quotes/{symbol}")).await;
        assert_eq!(reply.status, 200, "{symbol}: {}", reply.text());
    }
    let log = asking.get("/api/v1/log").await.text();
    assert_eq!(
        log.matches("<quoteServer>").count(),
        symbols.len(),
        "one fetch per symbol across both instances"
    );
    assert!(log.contains("<server>pg-a</server>") && log.contains("<server>pg-b</server>"));
}

#[tokio::test]
async fn one_users_commands_on_two_instances_never_interleave() {
    let Some(cluster) = cluster() else { return };
    let a = cluster.instance("pg-a", &[]);
    let b = cluster.instance("pg-b", &[]);
    let users = ["ua", "ub", "uc", "ud"];
    for (n, user) in users.iter().enumerate() {
        let reply = a.command(json!({"command": "ADD", "user": user, "amount": "500.00", "transaction_num": n + 1})).await;
        assert_eq!(reply.status, 200);
    }
    // Both instances hammer the same users at once; each command competes
    // for the same cash and shares.
    let tasks: Vec<_> = [a.client(), b.client()]
        .into_iter()
        .enumerate()
        .flat_map(|(i, client)| {
            users.iter().map(move |user| {
                let client = client.clone();
                let user = user.to_string();
                tokio::spawn(async move {
                    for round in 0..25 {
                        for command in [
                            json!({"command": "BUY", "user": user, "symbol": "S", "amount": "190.00"}),
                            json!({"command": "COMMIT_BUY", "user": user}),
                            json!({"command": "SELL", "user": user, "symbol": "S", "amount": "95.00"}),
                            json!({"command": "COMMIT_SELL", "user": user}),
                            json!({"command": "ADD", "user": user, "amount": "1.00", "transaction_num": 1000 * (i + 1) + round}),
                        ] {
                            let reply = client.try_command(command).await.expect("an answer");
                            assert!(matches!(reply.status, 200 | 409 | 422), "{}", reply.text());
                        }
                    }
                })
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for user in users {
        let summary = a.get(&format!("/api/v1/users/{user}")).await.json();
        assert!(
            !summary["cash"].as_str().unwrap().starts_with('-'),
            "{summary}"
        );
        // Each ADD ran once, whichever instance took it.
        let adds = summary["history"].as_array().unwrap().len();
        assert!(adds > 0);
    }
    // No lost update: the stored accounts are exactly the replay of the log.
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");
}

#[tokio::test]
async fn the_leading_worker_fires_triggers_on_a_moving_price() {
    let Some(cluster) = cluster() else { return };
    let quotes = QuoteServer::spawn("walk");
    let settings = [
        ("QUOTE_SERVER", quotes.address.as_str()),
        ("QUOTE_TTL_SECS", "1"),
        ("TRIGGER_REFRESH_SECS", "1"),
    ];
    let app = cluster.instance("pg-app", &settings);
    let _worker = cluster.worker("pg-worker", &settings);
    let fired = crate::triggers::arm_both_sides_and_wait(&app).await;
    let log = app.get("/api/v1/log").await.text();
    // The arming command's cached price is a system event naming it too;
    // the firing is the last one.
    let entry = log
        .rsplit("<systemEvent>")
        .filter_map(|piece| piece.split("</systemEvent>").next())
        .find(|e| e.contains(&format!("<command>{fired}</command>")))
        .expect("the firing is logged");
    assert!(
        entry.contains("<server>pg-worker</server>"),
        "the worker's refresh fired it: {entry}"
    );
}

#[tokio::test]
async fn another_worker_takes_the_lead_when_the_leader_dies() {
    let Some(cluster) = cluster() else { return };
    let mut workers = [cluster.worker("w-1", &[]), cluster.worker("w-2", &[])];
    let roles = |workers: &[App; 2]| {
        let clients = [workers[0].client(), workers[1].client()];
        async move {
            let mut roles = Vec::new();
            for client in clients {
                let reply = client.try_request(get(&client.url, "/healthz")).await;
                roles.push(
                    reply
                        .map(|r| r.json()["role"].as_str().unwrap_or_default().to_owned())
                        .unwrap_or_default(),
                );
            }
            roles
        }
    };
    let leader = wait_until(Duration::from_secs(15), || async {
        let r = roles(&workers).await;
        match (r[0].as_str(), r[1].as_str()) {
            ("leader", "follower") => Some(0),
            ("follower", "leader") => Some(1),
            _ => None,
        }
    })
    .await
    .expect("exactly one leader");
    workers[leader].kill();
    let follower = 1 - leader;
    let took_over = wait_until(Duration::from_secs(15), || async {
        (roles(&workers).await[follower] == "leader").then_some(())
    })
    .await;
    assert!(
        took_over.is_some(),
        "the follower did not take the lead within 15 s"
    );
}

#[tokio::test]
async fn redis_going_away_makes_it_slower_not_broken() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let app = spawn_with(Options {
        env: vec![
            ("DATABASE_URL", db.url.clone()),
            ("REDIS_URL", redis.url()),
            ("INSTANCE_ID", "pg-r".into()),
        ],
        ..Options::default()
    });
    app.command(json!({"command": "ADD", "user": "rita", "amount": "100.00"}))
        .await;
    let redis_check = |app: &App| {
        let client = app.client();
        async move {
            client
                .try_request(get(&client.url, "/readyz"))
                .await
                .unwrap()
                .json()["checks"]["redis"]
                .clone()
        }
    };
    assert_eq!(redis_check(&app).await, "ok");

    redis.stop();
    let quote = app
        .command(json!({"command": "QUOTE", "user": "rita", "symbol": "AB"}))
        .await;
    assert_eq!(quote.status, 200, "{}", quote.text());
    let ready = app.request(hyper::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 200, "an instance without Redis still serves");
    let degraded = wait_until(Duration::from_secs(10), || async {
        let check = redis_check(&app).await;
        check
            .as_str()
            .is_some_and(|c| c.starts_with("unavailable"))
            .then_some(check)
    })
    .await;
    assert!(degraded.is_some(), "/readyz says Redis is away");
    let metrics = app
        .request(hyper::Method::GET, "/metrics", None, None)
        .await
        .text();
    assert!(metrics.contains("cache_up 0"), "{metrics}");

    redis.resume().unwrap();
    let recovered = wait_until(Duration::from_secs(15), || async {
        (redis_check(&app).await == "ok").then_some(())
    })
    .await;
    assert!(recovered.is_some(), "recovered when Redis came back");
    let quote = app
        .command(json!({"command": "QUOTE", "user": "rita", "symbol": "CD"}))
        .await;
    assert_eq!(quote.status, 200);
}

#[tokio::test]
async fn a_database_outage_gives_503s_and_the_instance_recovers() {
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let db = postgres.database();
    let app = spawn_with(Options {
        env: vec![
            ("DATABASE_URL", db.url.clone()),
            ("INSTANCE_ID", "pg-d".into()),
        ],
        ..Options::default()
    });
    let add =
        |n: u64| json!({"command": "ADD", "user": "dora", "amount": "10.00", "transaction_num": n});
    assert_eq!(app.command(add(1)).await.status, 200);

    postgres.stop();
    let not_ready = wait_until(Duration::from_secs(15), || async {
        (app.request(hyper::Method::GET, "/readyz", None, None)
            .await
            .status
            == 503)
            .then_some(())
    })
    .await;
    assert!(not_ready.is_some(), "/readyz reports the database away");
    let started = Instant::now();
    let refused = app.command(add(2)).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (503, "database_unavailable"),
        "{}",
        refused.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered, not hung: {:?}",
        started.elapsed()
    );

    postgres.resume();
    let ready = wait_until(Duration::from_secs(30), || async {
        (app.request(hyper::Method::GET, "/readyz", None, None)
            .await
            .status
            == 200)
            .then_some(())
    })
    .await;
    assert!(ready.is_some(), "ready again once the database is back");
    // The refused command ran nowhere, so its retry runs now, once.
    let retried = wait_until(Duration::from_secs(15), || async {
        let reply = app.command(add(2)).await;
        (reply.status == 200).then_some(reply)
    })
    .await
    .expect("the retry succeeds");
    assert_eq!(retried.json()["cash"], "20.00");
    assert_eq!(
        app.command(add(2)).await.header("x-idempotent-replay"),
        Some("true")
    );
}

#[tokio::test]
async fn audit_verify_catches_a_tampered_balance_in_postgres() {
    let Some(cluster) = cluster() else { return };
    let app = cluster.instance("pg-audit", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 5, 500, 5);
    let (report, _) = app.replay(&file).await;
    assert_eq!(report["failed"], 0);
    let (clean, said) = cluster.audit();
    assert!(
        clean && said.contains("exactly what the log says"),
        "{said}"
    );

    let user = cluster
        .db
        .sql("SELECT user_id FROM accounts ORDER BY user_id LIMIT 1");
    let state = cluster.db.sql(&format!(
        "SELECT encode(state, 'hex') FROM accounts WHERE user_id = '{user}'"
    ));
    let tampered = crate::tamper::add_a_cent(&state);
    cluster.db.sql(&format!(
        "UPDATE accounts SET state = decode('{tampered}', 'hex') WHERE user_id = '{user}'"
    ));
    let (clean, said) = cluster.audit();
    assert!(!clean, "the tampering went unnoticed: {said}");
    assert!(
        said.contains(&format!("user {user}: cash stored")),
        "{said}"
    );
}

fn get(base: &str, path: &str) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    hyper::Request::get(format!("{base}{path}"))
        .body(http_body_util::Full::default())
        .unwrap()
}

/// Polls `check` every 100 ms until it gives a value or `limit` passes.
pub async fn wait_until<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
