//! `daytrader quote-server`: the legacy protocol on its own port.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use quotes::server::{PriceMode, QuoteServerConfig, QuoteServerCore};

use crate::cli::{Mode, QuoteServerArgs};

pub async fn run(args: QuoteServerArgs) -> anyhow::Result<ExitCode> {
    let mode = match args.mode {
        Mode::Fixed => PriceMode::Fixed,
        Mode::Walk => PriceMode::Walk { seed: args.seed },
    };
    let core = QuoteServerCore::new(QuoteServerConfig {
        mode,
        latency: args.latency.into(),
        fault_rate: args.fault_rate,
        seed: args.seed,
    })?;
    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!("Quote server listening on {}", listener.local_addr()?);
    quotes::server::serve(listener, Arc::new(core), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(ExitCode::SUCCESS)
}
