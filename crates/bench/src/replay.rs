//! Replays as processes of their own: `daytrader-bench replay` runs one
//! replay with the project's load generator (loadgen) and writes what it
//! measured; the suite starts it for every replay.
//!
//! A process of its own, rather than a task of the suite, so that the load
//! generator's CPU is its own line in the accounting and in the profile,
//! and so that the suite's bookkeeping never competes with it for a
//! runtime.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use engine::CommandName;
use loadgen::{ParsedWorkload, Report, RunOptions};
use serde::{Deserialize, Serialize};

use crate::model::ProcessCpu;
use crate::procfs::{Roles, Snapshot, account};
use crate::procs::Procs;

/// What `daytrader-bench replay` writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplayOutput {
    pub report: Report,
    /// The replaying process's own CPU time (user + system), seconds.
    pub cpu_s: f64,
}

/// One replay as the suite asks for it.
#[derive(Clone, Debug)]
pub struct ReplaySpec {
    /// How the report names it.
    pub name: String,
    pub workload: PathBuf,
    /// Only the first commands of the file.
    pub limit: Option<usize>,
    /// Leaves the file's DUMPLOGs out: filling a log, or timing commands
    /// without the bulk export at the end.
    pub skip_dumplog: bool,
    /// Open loop at this many commands per second.
    pub rate: Option<f64>,
    pub target: String,
    pub token: String,
    /// Where the child writes its DUMPLOG answers and its output.
    pub dir: PathBuf,
}

/// The workload as the child replays it.
pub fn prepare(
    mut workload: ParsedWorkload,
    limit: Option<usize>,
    skip_dumplog: bool,
) -> ParsedWorkload {
    if let Some(limit) = limit {
        workload.commands.truncate(limit);
    }
    if skip_dumplog {
        workload.commands.retain(|c| c.name != CommandName::DumpLog);
    }
    workload
}

/// `daytrader-bench replay`: what the suite passes to a replay process.
/// The token comes through the environment, out of the command line that
/// any user of the machine can read.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The workload file.
    pub workload: PathBuf,
    /// The server's base URL.
    #[arg(long)]
    pub target: String,
    #[arg(long, env = "DAYTRADER_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Where the workload's DUMPLOG answers go.
    #[arg(long)]
    pub dir: PathBuf,
    /// Where the measurements go, as JSON.
    #[arg(long)]
    pub output: PathBuf,
    /// Only the first commands of the file.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Leave the workload's DUMPLOGs out.
    #[arg(long)]
    pub skip_dumplog: bool,
    /// Open loop at this many commands per second.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// The replay process: replay, then write the output.
pub async fn child(args: ReplayArgs) -> anyhow::Result<()> {
    let workload = prepare(
        loadgen::parse_file(&args.workload)?,
        args.limit,
        args.skip_dumplog,
    );
    let mut options = RunOptions::new(args.target, args.token, args.dir.join("dumps"));
    options.progress = false;
    options.rate = args.rate;
    let report = loadgen::run(workload, options).await?;
    report.print_table(&mut std::io::stdout().lock())?;
    let out = ReplayOutput {
        report,
        cpu_s: own_cpu_seconds(),
    };
    std::fs::write(&args.output, serde_json::to_vec_pretty(&out)?)
        .with_context(|| format!("writing {}", args.output.display()))
}

fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// What a replay measured, with where the CPU went meanwhile.
pub struct Replayed {
    pub report: Report,
    pub cpu: Vec<ProcessCpu>,
}

/// The suite's side: starts the child and waits for it, taking CPU
/// snapshots around it.
pub async fn run(
    procs: &Procs,
    spec: &ReplaySpec,
    mut roles: Roles,
    cores: u32,
) -> anyhow::Result<Replayed> {
    let name = &spec.name;
    if spec.dir.exists() {
        std::fs::remove_dir_all(&spec.dir)?;
    }
    std::fs::create_dir_all(&spec.dir)?;
    let output = spec.dir.join("replay.json");
    let log = std::fs::File::create(spec.dir.join("replay.log"))?;
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .arg("replay")
        .arg(&spec.workload)
        .arg("--target")
        .arg(&spec.target)
        .arg("--dir")
        .arg(&spec.dir)
        .arg("--output")
        .arg(&output)
        // The token stays out of the command line, which any user can see.
        .env("DAYTRADER_ADMIN_TOKEN", &spec.token)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(limit) = spec.limit {
        command.arg("--limit").arg(limit.to_string());
    }
    if spec.skip_dumplog {
        command.arg("--skip-dumplog");
    }
    if let Some(rate) = spec.rate {
        command.arg("--rate").arg(format!("{rate:.3}"));
    }
    let before = Snapshot::take();
    let mut child = procs.spawn(&format!("replay {name}"), command)?;
    let status = child.wait().await?;
    let after = Snapshot::take();
    if !status.success() {
        bail!(
            "the replay {name} failed ({status}); see {}",
            spec.dir.join("replay.log").display()
        );
    }
    let out: ReplayOutput = serde_json::from_slice(
        &std::fs::read(&output).with_context(|| format!("reading {}", output.display()))?,
    )
    .context("the replay's output")?;
    roles
        .reported
        .push(("load generator".to_owned(), out.cpu_s));
    let cpu = account(&before, &after, &roles, cores);
    // The answers to the workload's DUMPLOGs are large and not needed.
    let _ = std::fs::remove_dir_all(spec.dir.join("dumps"));
    Ok(Replayed {
        report: out.report,
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_workload_is_cut_and_loses_its_dumplogs_on_request() {
        let parsed = loadgen::parse_str(
            "[1] ADD,a,1\n[2] DUMPLOG,a,./x\n[3] QUOTE,a,X\n[4] DUMPLOG,./all\n",
        );
        let lines = |w: &ParsedWorkload| w.commands.iter().map(|c| c.line).collect::<Vec<_>>();
        assert_eq!(
            lines(&prepare(parsed.clone(), None, false)),
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            lines(&prepare(parsed.clone(), Some(3), false)),
            vec![1, 2, 3]
        );
        assert_eq!(lines(&prepare(parsed.clone(), None, true)), vec![1, 3]);
        assert_eq!(lines(&prepare(parsed, Some(2), true)), vec![1]);
    }
}
