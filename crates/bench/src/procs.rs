//! The processes a run starts, so that none outlives it.
//!
//! Every child is killed when its handle is dropped (an error or a panic
//! unwinding), and is listed while it runs as a file in the run's pid
//! directory, named by its pid and holding its start time: if this process
//! itself is killed, `scripts/bench`'s trap stops what is listed there, and
//! the start time keeps it from killing an unrelated process that reused a
//! pid.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncReadExt as _;

/// Where the run's children are listed.
#[derive(Clone, Debug)]
pub struct Procs {
    pid_dir: PathBuf,
}

impl Procs {
    pub fn new(pid_dir: &Path) -> anyhow::Result<Procs> {
        std::fs::create_dir_all(pid_dir)
            .with_context(|| format!("creating {}", pid_dir.display()))?;
        Ok(Procs {
            pid_dir: pid_dir.to_owned(),
        })
    }

    /// Starts a child that runs until stopped.
    pub fn spawn(&self, name: &str, mut command: tokio::process::Command) -> anyhow::Result<Child> {
        command.kill_on_drop(true);
        let inner = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = inner.id().context("a child that just started has a pid")?;
        let pid_file = self.pid_dir.join(pid.to_string());
        let started = start_time(pid).unwrap_or_default();
        // Best effort: the list only matters if this process dies abruptly.
        let _ = std::fs::write(&pid_file, format!("{started} {name}\n"));
        Ok(Child {
            name: name.to_owned(),
            pid,
            pid_file,
            inner,
        })
    }

    /// Runs a command to its end and returns what it printed.
    pub async fn output(
        &self,
        name: &str,
        mut command: tokio::process::Command,
    ) -> anyhow::Result<Output> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = self.spawn(name, command)?;
        child.wait_with_output().await
    }
}

/// The process's start time in clock ticks since boot (field 22 of
/// /proc/PID/stat), which with the pid names one process for good.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            Some(!rest.starts_with('Z') && !rest.starts_with('X'))
        })
        .unwrap_or(false)
}

/// A running child.
pub struct Child {
    name: String,
    pid: u32,
    pid_file: PathBuf,
    inner: tokio::process::Child,
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn inner_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.inner
    }

    /// Whether it has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        matches!(self.inner.try_wait(), Ok(Some(_)))
    }

    pub async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        self.inner
            .wait()
            .await
            .with_context(|| format!("waiting for {}", self.name))
    }

    pub async fn wait_with_output(mut self) -> anyhow::Result<Output> {
        let stdout = tokio::spawn(read_all(self.inner.stdout.take()));
        let stderr = tokio::spawn(read_all(self.inner.stderr.take()));
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout: stdout.await.unwrap_or_default(),
            stderr: stderr.await.unwrap_or_default(),
        })
    }

    /// Asks it to stop (SIGTERM, or `signal`), and kills it if it has not
    /// within `grace`.
    pub async fn stop_with(mut self, signal: i32, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Ok(Some(status)) = self.inner.try_wait() {
            return Ok(status);
        }
        // SAFETY: kill(2) with a pid this handle owns; the child has not
        // been reaped (try_wait said so), so the pid is still its own.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        match tokio::time::timeout(grace, self.inner.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                eprintln!(
                    "daytrader-bench: {} did not stop within {grace:?}; killing it",
                    self.name
                );
                self.inner.start_kill()?;
                Ok(self.inner.wait().await?)
            }
        }
    }

    pub async fn stop(self, grace: Duration) -> anyhow::Result<ExitStatus> {
        self.stop_with(libc::SIGTERM, grace).await
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // kill_on_drop does the killing; the listing goes with the process.
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Reads a pipe to its end; a pipe that breaks ends the text there.
async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut buf).await;
    }
    buf
}
