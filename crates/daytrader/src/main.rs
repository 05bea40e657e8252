//! The one DayTrader binary: `serve` (the default), `worker`,
//! `quote-server`, `workload run|generate`, `migrate`, `audit verify` and
//! `healthcheck`.

mod audit;
mod cli;
mod config;
mod healthcheck;
mod quote_server;
mod serve;
mod workload;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve::run(cli.serve).await,
            Some(Command::Serve(args)) => serve::run(args).await,
            Some(Command::QuoteServer(args)) => quote_server::run(args).await,
            Some(Command::Workload(command)) => workload::run(command).await,
            Some(Command::Migrate(args)) => serve::migrate(args).await,
            Some(Command::Healthcheck(args)) => healthcheck::run(args).await,
            Some(Command::Worker(args)) => serve::worker(args).await,
            Some(Command::Audit(cli::AuditCommand::Verify(args))) => audit::verify(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("daytrader: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr, filtered by `--log` (`RUST_LOG`). Colours
/// only on a terminal (and not with `NO_COLOR` set): a log written to a
/// file or a pipe is plain text.
fn init_logging(filter: &str, format: cli::LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|error| {
        eprintln!("daytrader: ignoring the log filter {filter:?} ({error}); using info");
        EnvFilter::new("info")
    });
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Text => builder.init(),
    }
}
