//! Faults survived: a generated workload replayed through HAProxy in front
//! of three instances while something breaks, then the same checks every
//! time: no command failed, every transaction number is in the audit log
//! exactly once, `daytrader audit verify` is clean, and every account is
//! what the pure engine computes for the file (the run without the fault).
//!
//! The replays run as an open loop at a fixed rate (`workload run --rate`),
//! so the fault lands in the middle of the run on a fast machine and a slow
//! one alike, and they stay well inside an order's 60 s, so the engine's
//! instant replay is the exact expectation.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;

use crate::cluster::wait_until;
use crate::helpers::generate_workload;
use crate::infra::{PrivatePostgres, PrivateRedis};
use crate::local_cluster::LocalCluster;
use crate::oracle::{assert_accounts_as_read, assert_each_command_once, expected_as_logged};

/// Commands per second of the replays: 4,000 commands take 10 s.
const RATE: &str = "400";
/// A client that rides out an outage of a few seconds: with the backoff of
/// `workload run` (25 ms doubling to 1 s), 30 retries wait about 25 s.
const RETRIES: &str = "30";

/// Replays `file` through the cluster while `fault` runs, then checks
/// everything the module's header says.
pub(crate) async fn survives(
    cluster: &LocalCluster,
    file: &Path,
    options: &[&str],
    fault: impl Future<Output = ()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (report, ()) = tokio::join!(cluster.replay_with(file, &out, options), fault);
    // Each command runs in the oracle at the time the server recorded for
    // it, so orders expire in both alike however long the faults made the
    // replay take.
    let dump = out.join("testLOG");
    let expected = expected_as_logged(file, &dump);
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["commands"], expected.commands as u64);
    assert_each_command_once(&dump, expected.commands);
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");
    assert_accounts_as_read(cluster, cluster.token(), &expected.accounts).await;
}

#[tokio::test]
async fn an_instance_killed_and_another_drained_lose_nothing() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 20, 4000, 11);
    let fault = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.signal("web2", libc::SIGKILL);
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.signal("web3", libc::SIGTERM);
    };
    survives(&cluster, &file, &["--rate", RATE], fault).await;
    // Thousands of requests carried the supervisor token: no log kept it.
    for entry in std::fs::read_dir(cluster.logs()).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            !text.contains(cluster.token()),
            "{} holds the token",
            path.display()
        );
    }
}

#[tokio::test]
async fn postgresql_restarted_mid_run_loses_nothing() {
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let services = vec![("DAYTRADER_PG_PORT", postgres.port.to_string())];
    let Some(cluster) = LocalCluster::up_on("haproxy", 3, &[], services) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 20, 4000, 12);
    let fault = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        postgres.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        postgres.resume();
    };
    survives(
        &cluster,
        &file,
        &["--rate", RATE, "--retries", RETRIES],
        fault,
    )
    .await;
}

#[tokio::test]
async fn redis_stopped_and_started_mid_run_loses_nothing() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let services = vec![("DAYTRADER_REDIS_PORT", redis.port.to_string())];
    let Some(cluster) = LocalCluster::up_on("haproxy", 3, &[], services) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 20, 4000, 13);
    let redis = &mut redis;
    let fault = async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis.resume().expect("Redis starts again");
    };
    survives(&cluster, &file, &["--rate", RATE], fault).await;
}

#[tokio::test]
async fn a_slow_quote_server_slows_but_loses_nothing() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &["--quote-latency", "legacy"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Few commands: a fetch takes up to 4 s here, as from the legacy server.
    let file = generate_workload(dir.path(), 10, 500, 14);
    survives(&cluster, &file, &[], async {}).await;
}

#[tokio::test]
async fn a_quote_server_replying_garbage_is_never_believed() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &["--quote-faults", "0.3"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 20, 2000, 15);
    // Every garbage reply is refused and asked again; a price that gets
    // through is the right one, or the summaries would differ.
    survives(&cluster, &file, &["--retries", RETRIES], async {}).await;
}

#[tokio::test]
async fn a_quote_server_that_is_down_fails_only_what_needs_a_price() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let token = cluster.token().to_owned();
    let cluster = &cluster;
    let run = |body: serde_json::Value| {
        let token = token.clone();
        async move {
            let started = Instant::now();
            let reply = cluster
                .request(
                    Method::POST,
                    "/api/v1/commands",
                    Some(&token),
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await;
            (reply, started.elapsed())
        }
    };
    let add = json!({"command": "ADD", "user": "qdown", "amount": "500.00", "transaction_num": 1});
    assert_eq!(run(add).await.0.status, 200);
    cluster.signal("quotes", libc::SIGKILL);

    let buy = json!({"command": "BUY", "user": "qdown", "symbol": "QDN", "amount": "100.00", "transaction_num": 2});
    let (reply, took) = run(buy.clone()).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "quote_unavailable"),
        "{}",
        reply.text()
    );
    assert!(reply.header("retry-after").is_some());
    assert!(
        took < Duration::from_secs(15),
        "bounded by the client's deadline: {took:?}"
    );
    // Nothing else is affected, and the refused BUY changed nothing.
    let more = json!({"command": "ADD", "user": "qdown", "amount": "1.00", "transaction_num": 3});
    let (reply, _) = run(more).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let summary = cluster
        .request(Method::GET, "/api/v1/users/qdown", Some(&token), None)
        .await
        .json();
    assert_eq!(
        (summary["cash"].as_str(), summary["reserved_cash"].as_str()),
        (Some("501.00"), Some("0.00"))
    );
    assert_eq!(summary["pending_buys"], json!([]));

    // Back, the same transaction number runs, once.
    cluster.restart("quotes");
    let (reply, _) = run(buy.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (again, _) = run(buy).await;
    assert_eq!(again.header("x-idempotent-replay"), Some("true"));
}

#[tokio::test]
async fn the_worker_killed_holding_the_lease_is_replaced_and_loses_nothing() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let worker = format!("http://127.0.0.1:{}", cluster.status()["worker"].1);
    // The worker's /healthz says its role: "leader" once it holds the lease.
    let leads = |url: String| async move {
        let request = hyper::Request::get(format!("{url}/healthz"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let reply = crate::helpers::Http::new(url)
            .try_request(request)
            .await
            .ok()?;
        (reply.json()["role"] == "leader").then_some(())
    };
    let lead = wait_until(Duration::from_secs(15), || leads(worker.clone())).await;
    assert!(lead.is_some(), "the worker leads");

    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 20, 4000, 16);
    let fault = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.signal("worker", libc::SIGKILL);
        cluster.restart("worker");
        // The dead leader's session, and so its advisory lock, is gone:
        // the new worker leads within seconds.
        let lead = wait_until(Duration::from_secs(15), || leads(worker.clone())).await;
        assert!(lead.is_some(), "a new worker takes the lease");
    };
    survives(&cluster, &file, &["--rate", RATE], fault).await;
}
