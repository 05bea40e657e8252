//! The load-balanced cluster, started with `scripts/cluster` as an operator
//! would: distribution, failover under SIGKILL, drain under SIGTERM,
//! persistence across `down` and `up`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::cluster::wait_until;
use crate::helpers::{BIN, assert_valid_log, course_file};
use crate::infra::{free_port, shared_redis, skip, unique};
use crate::oracle::{comparable, engine_summary, expected};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/cluster");

/// A cluster of this test's own (its own name: state, database, Redis
/// prefix and ports), stopped and forgotten when dropped.
pub struct LocalCluster {
    name: String,
    pub port: u16,
    pub env: BTreeMap<String, String>,
    client: crate::helpers::Http,
}

impl LocalCluster {
    pub fn up(lb: &str, instances: usize, extra: &[&str]) -> Option<LocalCluster> {
        shared_redis()?;
        for tool in [lb, "psql"] {
            if Command::new("which")
                .arg(tool)
                .output()
                .map_or(true, |o| !o.status.success())
            {
                return skip(tool);
            }
        }
        let name = unique("t").replace(':', "");
        let port = base_port(instances);
        let cluster = LocalCluster {
            env: BTreeMap::new(),
            client: crate::helpers::Http::new(format!("http://127.0.0.1:{port}")),
            name,
            port,
        };
        let out = cluster
            .script(&[
                "up",
                "--instances",
                &instances.to_string(),
                "--lb",
                lb,
                "--port",
                &port.to_string(),
                "--fresh",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/cluster up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cluster = cluster;
        cluster.env = cluster.read_env();
        Some(cluster)
    }

    fn script(&self, args: &[&str]) -> Command {
        let mut command = Command::new(SCRIPT);
        command
            .args(args)
            .env("DAYTRADER_CLUSTER_NAME", &self.name)
            .env("DAYTRADER_BIN", BIN)
            .env("RUST_LOG", "info");
        command
    }

    fn read_env(&self) -> BTreeMap<String, String> {
        let out = self.script(&["env"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// `name pid=… port=… up|down` lines, by name.
    pub fn status(&self) -> BTreeMap<String, (u32, u16, bool)> {
        let out = self.script(&["status"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let name = parts.next()?.to_owned();
                let pid = parts.next()?.strip_prefix("pid=")?.parse().ok()?;
                let port = parts.next()?.strip_prefix("port=")?.parse().ok()?;
                Some((name, (pid, port, parts.next() == Some("up"))))
            })
            .collect()
    }

    pub fn signal(&self, process: &str, signal: i32) {
        let (pid, _, _) = self.status()[process];
        // SAFETY: kill(2) on a pid the cluster script reported.
        assert_eq!(
            unsafe { libc::kill(pid as libc::pid_t, signal) },
            0,
            "signal {signal} to {process}"
        );
    }

    pub fn restart(&self, process: &str) {
        let out = self.script(&["restart", process]).output().unwrap();
        assert!(
            out.status.success(),
            "restart {process}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn down(&self) {
        let out = self.script(&["down"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn up_again(&self, extra: &[&str]) {
        let out = self
            .script(&["up", "--instances", "3", "--port", &self.port.to_string()])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn token(&self) -> &str {
        &self.env["DAYTRADER_ADMIN_TOKEN"]
    }

    pub fn logs(&self) -> PathBuf {
        Path::new(SCRIPT)
            .parent()
            .unwrap()
            .join("../.cluster")
            .join(&self.name)
            .join("logs")
    }

    /// HAProxy's stats as `server -> status` for the web backend.
    pub async fn haproxy_states(&self) -> BTreeMap<String, String> {
        let stats = crate::helpers::Http::new(format!("http://127.0.0.1:{}", self.port + 92));
        let request = hyper::Request::get(format!("{}/;csv", stats.url))
            .body(Default::default())
            .unwrap();
        let csv = stats
            .try_request(request)
            .await
            .map(|r| r.text())
            .unwrap_or_default();
        csv.lines()
            .filter(|l| l.starts_with("web,web"))
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(',').collect();
                Some((fields.get(1)?.to_string(), fields.get(17)?.to_string()))
            })
            .collect()
    }

    /// Replays a workload through the balancer.
    pub async fn replay(&self, file: &Path, out: &Path) -> serde_json::Value {
        let report = out.join("report.json");
        let status = tokio::process::Command::new(BIN)
            .args(["workload", "run"])
            .arg(file)
            .args([
                "--target",
                &format!("http://127.0.0.1:{}", self.port),
                "--token",
                self.token(),
                "--quiet",
                "--out-dir",
            ])
            .arg(out)
            .arg("--report")
            .arg(&report)
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert!(status.success(), "{report:#}");
        report
    }

    pub fn audit(&self) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["audit", "verify"])
            .env("DATABASE_URL", &self.env["DATABASE_URL"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl std::ops::Deref for LocalCluster {
    type Target = crate::helpers::Http;

    fn deref(&self) -> &crate::helpers::Http {
        &self.client
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.script(&["down"]).output();
        if let Some(url) = self.env.get("DATABASE_URL")
            && let Some((_, database)) = url.rsplit_once('/')
        {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .output();
        }
        let _ = std::fs::remove_dir_all(self.logs().parent().unwrap());
    }
}

/// A base port whose whole range (balancer, instances, worker, quotes,
/// stats) is free.
fn base_port(instances: usize) -> u16 {
    loop {
        let port = 20_000 + free_port() % 40_000;
        let needed = (0..=instances as u16)
            .chain(90..=92)
            .map(|offset| port + offset);
        if needed
            .into_iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return port;
        }
    }
}

async fn instances_serving(cluster: &LocalCluster, requests: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..requests {
        let reply = cluster
            .request(hyper::Method::GET, "/healthz", None, None)
            .await;
        *seen
            .entry(reply.header("x-instance-id").unwrap().to_owned())
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn both_balancers_spread_requests_over_every_instance() {
    for lb in ["haproxy", "nginx"] {
        let Some(cluster) = LocalCluster::up(lb, 3, &[]) else {
            return;
        };
        let seen = instances_serving(&cluster, 30).await;
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            ["web1", "web2", "web3"],
            "{lb}: {seen:?}"
        );
        assert!(
            seen.values().all(|&n| n == 10),
            "{lb} round robin: {seen:?}"
        );

        // The request id set at the edge reaches the instance's log.
        let reply = cluster
            .request(hyper::Method::GET, "/readyz", None, None)
            .await;
        let id = reply
            .header("x-request-id")
            .expect("an edge request id")
            .to_owned();
        let instance = reply.header("x-instance-id").unwrap().to_owned();
        assert!(
            id.len() >= 16 && !id.starts_with("web"),
            "{lb} sets it, not the instance: {id}"
        );
        let logged = wait_until(Duration::from_secs(5), || async {
            let log = std::fs::read_to_string(cluster.logs().join(format!("{instance}.log")))
                .unwrap_or_default();
            log.contains(&id).then_some(())
        })
        .await;
        assert!(logged.is_some(), "{lb}: {instance} logged request {id}");
        // A client's own id is kept.
        let mine = cluster
            .try_request(
                hyper::Request::get(format!("{}/healthz", cluster.url))
                    .header("x-request-id", "client-chosen-id-42")
                    .body(Default::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            mine.header("x-request-id"),
            Some("client-chosen-id-42"),
            "{lb}"
        );
    }
}

#[tokio::test]
async fn a_replay_survives_an_instance_killed_mid_way() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = course_file("100User_testWorkLoad.txt").unwrap_or_else(|| {
        let file = dir.path().join("generated.txt");
        let status = Command::new(BIN)
            .args([
                "workload",
                "generate",
                "--users",
                "100",
                "--commands",
                "30000",
                "--seed",
                "3",
                "--out",
            ])
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
        file
    });
    let expected = expected(&file);
    let out = dir.path().join("out");
    let killer = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.signal("web2", libc::SIGKILL);
        let down = wait_until(Duration::from_secs(10), || async {
            (cluster
                .haproxy_states()
                .await
                .get("web2")
                .map(String::as_str)
                == Some("DOWN"))
            .then_some(())
        })
        .await;
        assert!(
            down.is_some(),
            "the stats page shows web2 down: {:?}",
            cluster.haproxy_states().await
        );
    };
    let (report, ()) = tokio::join!(cluster.replay(&file, &out), killer);
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["commands"], expected.commands as u64);

    for (user, account) in &expected.accounts {
        let reply = cluster
            .request(
                hyper::Method::GET,
                &format!("/api/v1/users/{user}"),
                Some(cluster.token()),
                None,
            )
            .await;
        assert_eq!(
            comparable(reply.json()),
            engine_summary(account),
            "summary of {user}"
        );
    }
    // Every command exactly once in the audit log.
    let dump = out.join("testLOG");
    assert_valid_log(&dump);
    let xml = std::fs::read_to_string(&dump).unwrap();
    let numbers: Vec<i64> = xml
        .split("<userCommand>")
        .skip(1)
        .map(|entry| {
            let start = entry.find("<transactionNum>").unwrap() + "<transactionNum>".len();
            entry[start..entry.find("</transactionNum>").unwrap()]
                .parse()
                .unwrap()
        })
        .collect();
    let distinct: BTreeSet<i64> = numbers.iter().copied().collect();
    assert_eq!(
        (numbers.len(), distinct.len()),
        (expected.commands, expected.commands),
        "each command once"
    );
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");

    cluster.restart("web2");
    let back = wait_until(Duration::from_secs(15), || async {
        (cluster
            .haproxy_states()
            .await
            .get("web2")
            .map(String::as_str)
            == Some("UP"))
        .then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "the stats page shows web2 back: {:?}",
        cluster.haproxy_states().await
    );
    assert_eq!(instances_serving(&cluster, 30).await.len(), 3);
}

#[tokio::test]
async fn an_instance_drained_with_sigterm_cuts_off_no_request() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work.txt");
    let status = Command::new(BIN)
        .args([
            "workload",
            "generate",
            "--users",
            "60",
            "--commands",
            "15000",
            "--seed",
            "8",
            "--out",
        ])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let drain = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.signal("web1", libc::SIGTERM);
        let stopped = wait_until(Duration::from_secs(20), || async {
            (!cluster.status()["web1"].2).then_some(())
        })
        .await;
        assert!(stopped.is_some(), "web1 stopped after SIGTERM");
    };
    let out = dir.path().join("out");
    let (report, ()) = tokio::join!(cluster.replay(&file, &out), drain);
    assert_eq!(report["failed"], 0, "{report:#}");
    let log = std::fs::read_to_string(cluster.logs().join("web1.log")).unwrap();
    assert!(
        log.contains("finishing requests in flight") && log.contains("stopped"),
        "a graceful stop:\n{log}"
    );
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");
}

#[tokio::test]
async fn data_survives_down_and_up_but_not_fresh() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let body = json!({"command": "ADD", "user": "kept", "amount": "12.34", "transaction_num": 1})
        .to_string();
    let add = cluster
        .request(
            hyper::Method::POST,
            "/api/v1/commands",
            Some(cluster.token()),
            Some(("application/json", body.into_bytes())),
        )
        .await;
    assert_eq!(add.status, 200, "{}", add.text());
    // A new client each time: the old balancer's pooled connections die with it.
    let summary = || async {
        let client = crate::helpers::Http::new(cluster.url.clone());
        client
            .request(
                hyper::Method::GET,
                "/api/v1/users/kept",
                Some(cluster.token()),
                None,
            )
            .await
    };

    cluster.down();
    assert!(cluster.status().values().all(|(_, _, up)| !up) || cluster.status().is_empty());
    cluster.up_again(&[]);
    assert_eq!(
        summary().await.json()["cash"],
        "12.34",
        "kept across down and up"
    );
    cluster.down();
    cluster.up_again(&["--fresh"]);
    assert_eq!(summary().await.status, 404, "--fresh starts empty");
}
