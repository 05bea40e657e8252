//! `daytrader workload run|generate`.

use std::fs::File;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{GenerateArgs, RunArgs, WorkloadCommand};

pub async fn run(command: WorkloadCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkloadCommand::Run(args) => replay(args).await,
        WorkloadCommand::Generate(args) => generate(args),
    }
}

async fn replay(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Compact from the first line on: a big file is never held as parsed
    // commands.
    let workload = loadgen::Workload::read_file(&args.file)?;
    for bad in workload.malformed() {
        eprintln!(
            "{}:{}: skipped: {} ({})",
            args.file.display(),
            bad.line,
            bad.reason,
            bad.text
        );
    }
    let unshown = workload.malformed_lines() - workload.malformed().len() as u64;
    if unshown > 0 {
        eprintln!("{}: {unshown} more lines skipped", args.file.display());
    }
    let mut options = loadgen::RunOptions::new(args.target, args.token, args.out_dir);
    options.concurrency = args.concurrency;
    options.retries = args.retries;
    anyhow::ensure!(
        args.deadline > 0.0 && args.deadline.is_finite(),
        "--deadline must be a positive number of seconds"
    );
    options.deadline = Duration::from_secs_f64(args.deadline);
    options.rate = args.rate;
    options.progress = !args.quiet;
    options.request_timeout = Duration::from_secs(30);
    let report = loadgen::run(workload, options).await?;
    report.print_table(&mut std::io::stdout().lock())?;
    if let Some(path) = &args.report {
        report.write_json(path)?;
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    match &args.out {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            loadgen::generate(args.users, args.commands, args.seed, file)?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            loadgen::generate(args.users, args.commands, args.seed, &mut stdout)?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
