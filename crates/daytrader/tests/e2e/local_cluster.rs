//! A load-balanced cluster of a test's own, started with `scripts/cluster`
//! as an operator would: PostgreSQL, Redis, `instances` copies of the
//! binary and a balancer in front. Used by the balancer tests and by the
//! browser suite (tests/browser), which includes this file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{BIN, assert_succeeded, run_workload};
use crate::infra::{getrandom_bytes, shared_redis, skip, unique};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/cluster");

/// A cluster of this test's own (its own name: state, database, Redis
/// prefix and ports), stopped and forgotten when dropped.
pub struct LocalCluster {
    name: String,
    pub port: u16,
    pub env: BTreeMap<String, String>,
    client: crate::helpers::Http,
    /// What `scripts/cluster` is told besides its name: another
    /// PostgreSQL or Redis port, for tests that stop their own.
    services: Vec<(&'static str, String)>,
}

impl LocalCluster {
    pub fn up(lb: &str, instances: usize, extra: &[&str]) -> Option<LocalCluster> {
        LocalCluster::up_on(lb, instances, extra, Vec::new())
    }

    /// A cluster over the services `env` names (`DAYTRADER_PG_PORT`,
    /// `DAYTRADER_REDIS_PORT`) instead of the machine's own.
    pub fn up_on(
        lb: &str,
        instances: usize,
        extra: &[&str],
        services: Vec<(&'static str, String)>,
    ) -> Option<LocalCluster> {
        let mut cluster = LocalCluster::prepare(lb, instances, services)?;
        let out = cluster.start(lb, instances, extra);
        assert!(
            out.status.success(),
            "scripts/cluster up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.env = cluster.read_env();
        Some(cluster)
    }

    /// A cluster of this test's own, named and with its ports chosen but
    /// not started; `None` (a loud skip) when what it needs is missing.
    pub fn prepare(
        lb: &str,
        instances: usize,
        services: Vec<(&'static str, String)>,
    ) -> Option<LocalCluster> {
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
        Some(LocalCluster {
            env: BTreeMap::new(),
            client: crate::helpers::Http::new(format!("http://127.0.0.1:{port}")),
            name,
            port,
            services,
        })
    }

    /// `scripts/cluster up --fresh` on this cluster's ports, as it went;
    /// once it succeeds, [`LocalCluster::read_env`] gives its settings.
    pub fn start(&self, lb: &str, instances: usize, extra: &[&str]) -> std::process::Output {
        self.script(&[
            "up",
            "--instances",
            &instances.to_string(),
            "--lb",
            lb,
            "--port",
            &self.port.to_string(),
            "--fresh",
        ])
        .args(extra)
        .output()
        .unwrap()
    }

    fn script(&self, args: &[&str]) -> Command {
        let mut command = Command::new(SCRIPT);
        command
            .args(args)
            .env("DAYTRADER_CLUSTER_NAME", &self.name)
            .env("DAYTRADER_BIN", BIN)
            .env("RUST_LOG", "info")
            .envs(self.services.iter().map(|(k, v)| (k, v)));
        command
    }

    pub fn read_env(&self) -> BTreeMap<String, String> {
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
        assert_succeeded(&out);
    }

    pub fn up_again(&self, extra: &[&str]) {
        let out = self
            .script(&["up", "--instances", "3", "--port", &self.port.to_string()])
            .args(extra)
            .output()
            .unwrap();
        assert_succeeded(&out);
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
        self.replay_with(file, out, &[]).await
    }

    /// Replays a workload through the balancer with more options of
    /// `daytrader workload run` (`--rate`, `--retries`).
    pub async fn replay_with(
        &self,
        file: &Path,
        out: &Path,
        options: &[&str],
    ) -> serde_json::Value {
        let target = format!("http://127.0.0.1:{}", self.port);
        let (status, report) = run_workload(&target, self.token(), file, out, options).await;
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
/// stats) is free. Drawn at random on a grid of 100, so that two clusters
/// starting at once never get overlapping ranges (the kernel's free ports
/// come in sequence, and HAProxy's SO_REUSEPORT would share a port with
/// another cluster's balancer without a word). The grid stays below the
/// kernel's ephemeral ports (32768 up, by default): a port found free
/// there could become the local end of any test's outgoing connection
/// before the cluster listens on it, and its balancer then fails to start.
fn base_port(instances: usize) -> u16 {
    // 20,000 to 32,692: the last range ends under 32,768.
    const SLOTS: u16 = 127;
    loop {
        let mut bytes = [0u8; 2];
        getrandom_bytes(&mut bytes);
        let port = 20_000 + (u16::from_le_bytes(bytes) % SLOTS) * 100;
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
