//! `daytrader-bench`: the benchmark suite behind `scripts/bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bench::model::BenchReport;
use bench::replay::{self, ReplayArgs};
use bench::suite::{self, Config};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "daytrader-bench",
    version,
    about = "DayTrader's benchmark suite (scripts/bench runs it)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole suite and write the report, the page and the plots.
    Run(RunArgs),
    /// Replay one workload and write what it measured (the suite runs
    /// this as a process of its own for every replay).
    Replay(ReplayArgs),
    /// Rewrite the page and the plots from a report.json, recomputing its
    /// figures and target checks.
    Render(RenderArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Small workloads and short runs: a smoke run of every step.
    #[arg(long)]
    quick: bool,
    /// The project's root (scripts/cluster, deploy/locust).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// The daytrader binary to measure.
    #[arg(long, env = "DAYTRADER_BIN")]
    bin: PathBuf,
    /// Where report.json (and raw/) go (default: ROOT/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where benchmarks.md (and bench/*.svg) go (default: ROOT/docs).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// The cluster's base port: the balancer on it, instance i on P + i,
    /// the quote server on P + 91.
    #[arg(long, default_value_t = 19900)]
    port: u16,
    /// The course workload files (default: ROOT/../shared/workloads).
    #[arg(long, env = "DAYTRADER_WORKLOADS")]
    workloads: Option<PathBuf>,
    /// Locust's executable (default: ROOT/bench/.venv/bin/locust, when
    /// there).
    #[arg(long)]
    locust: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RenderArgs {
    #[arg(long, default_value = "bench/report.json")]
    report: PathBuf,
    #[arg(long, default_value = "docs")]
    docs: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Replay(args) => replay::child(args).await.map(|()| ExitCode::SUCCESS),
            Command::Render(args) => render(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("daytrader-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let root = std::path::absolute(&args.root)?;
    let absolute = |p: Option<PathBuf>, default: PathBuf| -> anyhow::Result<PathBuf> {
        Ok(std::path::absolute(p.unwrap_or(default))?)
    };
    let locust = args
        .locust
        .or_else(|| Some(root.join("bench/.venv/bin/locust")).filter(|p| p.is_file()));
    let config = Config {
        bin: std::path::absolute(&args.bin)?,
        out_dir: absolute(args.out, root.join("bench"))?,
        docs_dir: absolute(args.docs, root.join("docs"))?,
        port: args.port,
        quick: args.quick,
        workloads: absolute(args.workloads, root.join("../shared/workloads"))?,
        locust,
        root,
    };
    let report = suite::run(config.clone()).await?;
    eprintln!(
        "daytrader-bench: wrote {} and {} in {:.1} min",
        config.out_dir.join("report.json").display(),
        config.docs_dir.join("benchmarks.md").display(),
        report.duration_s / 60.0
    );
    for t in &report.targets {
        eprintln!("  {}: {}", t.id, t.verdict());
    }
    if report.failed() {
        eprintln!("daytrader-bench: some steps failed (see the notes in the report)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading {}", args.report.display()))?;
    let mut report: BenchReport = serde_json::from_str(&text).context("the report")?;
    report.finish();
    let out_dir = args
        .report
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    suite::write(&report, &out_dir, &args.docs)?;
    Ok(ExitCode::SUCCESS)
}
