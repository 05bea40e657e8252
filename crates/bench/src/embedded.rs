//! DayTrader in its embedded mode (SQLite, the built-in quote server), as
//! `cargo run --release` starts it, on a data directory of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::procs::{Child, Procs};

/// The environment of serve that would select the cluster mode or change
/// what is measured: an embedded server starts without them, whatever the
/// shell running the suite has set (after `eval "$(scripts/cluster env)"`,
/// say).
const CLUSTER_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "DB_HOST",
    "DB_PASS",
    "DB_PASS_FILE",
    "REDIS_URL",
    "REDIS_HOST",
    "QUOTE_SERVER",
    "DAYTRADER_ADMIN_TOKEN",
    "DAYTRADER_ADMIN_TOKEN_FILE",
    "PORT",
];

pub struct Embedded {
    child: Child,
    pub url: String,
    pub token: String,
    pub data_dir: PathBuf,
}

impl Embedded {
    /// Starts a server on a fresh data directory and a free port, and waits
    /// for the line that says it listens.
    pub async fn start(
        procs: &Procs,
        bin: &Path,
        data_dir: &Path,
        log: &Path,
    ) -> anyhow::Result<Embedded> {
        if data_dir.exists() {
            std::fs::remove_dir_all(data_dir)
                .with_context(|| format!("emptying {}", data_dir.display()))?;
        }
        std::fs::create_dir_all(data_dir)?;
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = tokio::process::Command::new(bin);
        for name in CLUSTER_VARIABLES {
            command.env_remove(name);
        }
        command
            .arg("serve")
            .env("DAYTRADER_DATA_DIR", data_dir)
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("INSTANCE_ID", "embedded")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = procs.spawn("embedded server", command)?;
        let stdout = child
            .inner_mut()
            .stdout
            .take()
            .context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("DayTrader listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return Ok::<_, anyhow::Error>(Some(url.to_owned()));
                }
            }
            Ok(None)
        })
        .await
        .context("the embedded server did not say it listens within 60 s")??;
        let Some(url) = url else {
            bail!("the embedded server exited (see {})", log.display());
        };
        // Nothing more comes on stdout, but the pipe is kept open and read
        // so that a late line could never block the server.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let token = std::fs::read_to_string(data_dir.join("admin-token"))
            .context("the embedded server's admin token")?
            .trim()
            .to_owned();
        Ok(Embedded {
            child,
            url,
            token,
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Stops the server (it commits what is queued) and removes its data.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.child.stop(Duration::from_secs(30)).await?;
        std::fs::remove_dir_all(&self.data_dir)
            .with_context(|| format!("removing {}", self.data_dir.display()))
    }
}
