//! The local cluster, through `scripts/cluster`: the suite measures the
//! topology users run, started the way they start it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::procfs::Roles;

/// How to drive `scripts/cluster` for this run.
#[derive(Clone, Debug)]
pub struct ClusterScript {
    pub script: PathBuf,
    pub bin: PathBuf,
    /// DAYTRADER_CLUSTER_NAME: the state directory, the PostgreSQL
    /// database and the Redis prefix, apart from any other cluster.
    pub name: String,
    pub port: u16,
}

impl ClusterScript {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.script);
        command
            .args(args)
            .env("DAYTRADER_BIN", &self.bin)
            .env("DAYTRADER_CLUSTER_NAME", &self.name)
            // A benchmark measures the service, not its request log.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = tokio::process::Command::from(self.command(args));
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = command
            .output()
            .await
            .with_context(|| format!("running {}", self.script.display()))?;
        if !output.status.success() {
            bail!(
                "scripts/cluster {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stops whatever this cluster name has running (a run that was cut
    /// short may have left it up), then starts `instances` instances on an
    /// empty database.
    pub async fn up(&self, instances: u32) -> anyhow::Result<Cluster> {
        self.run(&["down"]).await?;
        let port = self.port.to_string();
        let instances_arg = instances.to_string();
        let mut cluster = Cluster {
            script: self.clone(),
            instances,
            env: BTreeMap::new(),
            pids: BTreeMap::new(),
            up: true,
        };
        self.run(&[
            "up",
            "--instances",
            &instances_arg,
            "--port",
            &port,
            "--fresh",
        ])
        .await?;
        cluster.env = parse_env(&self.run(&["env"]).await?);
        cluster.pids = parse_status(&self.run(&["status"]).await?);
        for needed in ["DAYTRADER_URL", "DAYTRADER_ADMIN_TOKEN", "DATABASE_URL"] {
            if !cluster.env.contains_key(needed) {
                bail!("scripts/cluster env gave no {needed}");
            }
        }
        Ok(cluster)
    }
}

/// A running cluster; stopped when dropped, if not before.
pub struct Cluster {
    script: ClusterScript,
    pub instances: u32,
    env: BTreeMap<String, String>,
    pids: BTreeMap<String, u32>,
    up: bool,
}

impl Cluster {
    /// The balancer's URL.
    pub fn url(&self) -> &str {
        &self.env["DAYTRADER_URL"]
    }

    pub fn token(&self) -> &str {
        &self.env["DAYTRADER_ADMIN_TOKEN"]
    }

    /// Instance `i` (from 1), straight, without the balancer.
    pub fn instance_url(&self, i: u32) -> String {
        format!("http://127.0.0.1:{}", u32::from(self.script.port) + i)
    }

    pub fn quote_port(&self) -> u16 {
        self.script.port + 91
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids.get(name).copied()
    }

    /// The PostgreSQL database, as the last part of DATABASE_URL.
    pub fn database(&self) -> Option<String> {
        self.env
            .get("DATABASE_URL")
            .and_then(|u| u.rsplit('/').next())
            .map(str::to_owned)
    }

    /// The cluster's processes by role, for CPU accounting.
    pub fn roles(&self) -> Roles {
        let mut named = Vec::new();
        for (name, label) in [("haproxy", "HAProxy"), ("nginx", "nginx")] {
            if let Some(pid) = self.pid(name) {
                named.push((label.to_owned(), pid));
            }
        }
        for i in 1..=self.instances {
            if let Some(pid) = self.pid(&format!("web{i}")) {
                named.push((format!("instance web{i}"), pid));
            }
        }
        for (name, label) in [("worker", "trigger worker"), ("quotes", "quote server")] {
            if let Some(pid) = self.pid(name) {
                named.push((label.to_owned(), pid));
            }
        }
        Roles {
            named,
            database: self.database(),
            reported: Vec::new(),
        }
    }

    /// Stops the cluster's quote server, so that another can take its port.
    pub async fn stop_quote_server(&mut self) -> anyhow::Result<()> {
        let pid = self
            .pid("quotes")
            .context("the cluster has no quote server")?;
        // SAFETY: kill(2) on the quote server scripts/cluster started for
        // this run (its pid comes from the cluster's own status).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        for _ in 0..100 {
            if !crate::procs::alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.pids.remove("quotes");
        Ok(())
    }

    /// Records a process of the cluster started by the suite itself.
    pub fn adopt(&mut self, name: &str, pid: u32) {
        self.pids.insert(name.to_owned(), pid);
    }

    pub async fn down(mut self) -> anyhow::Result<()> {
        self.up = false;
        self.script.run(&["down"]).await.map(|_| ())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.up {
            let _ = self
                .script
                .command(&["down"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `export NAME=value` lines.
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `name pid=N port=P state` lines.
pub fn parse_status(text: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let pid = words.find_map(|w| w.strip_prefix("pid="))?.parse().ok()?;
            Some((name.to_owned(), pid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_env_and_status() {
        let env = parse_env(
            "export DATABASE_URL=postgres://postgres@127.0.0.1:5432/daytrader_bench\nexport DAYTRADER_URL=http://127.0.0.1:19900\n",
        );
        assert_eq!(env["DAYTRADER_URL"], "http://127.0.0.1:19900");
        let status = parse_status(
            "haproxy pid=30072 port=19900 up\nweb1 pid=30024 port=19901 up\npostgres pid=- port=5432 database=x\n",
        );
        assert_eq!(status.get("haproxy"), Some(&30072));
        assert_eq!(status.get("web1"), Some(&30024));
        assert_eq!(status.get("postgres"), None);
    }
}
