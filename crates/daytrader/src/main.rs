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
    init_logging();
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

/// Structured logs on stderr: `RUST_LOG` filters (default `info`),
/// `LOG_FORMAT=json` gives one JSON object per line.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}
