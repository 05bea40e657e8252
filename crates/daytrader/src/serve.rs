//! `daytrader serve`: run an instance until SIGTERM or Ctrl-C, then drain.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use server::Settings;
use server::admin_token::TokenSource;

use crate::cli::{MigrateArgs, ServeArgs};

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(args)?;
    let data_dir = settings.data_dir.clone();
    let instance = settings.instance_id.clone();
    let running = server::start(settings).await?;
    match &running.token_source {
        TokenSource::Configured => println!("Supervisor token: from the configuration"),
        TokenSource::Kept(path) => println!("Supervisor token: in {}", path.display()),
        TokenSource::Generated(path) => println!(
            "Supervisor token (generated, shown only now, kept in {}): {}",
            path.display(),
            running.admin_token
        ),
    }
    // Last, on stdout: scripts wait for this line, by then all is said.
    println!(
        "DayTrader listening on http://{} (instance {instance}, data {})",
        running.addr,
        data_dir.display()
    );
    wait_for_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

pub fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let admin_token = match (&args.admin_token, &args.admin_token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the admin token from {}", path.display()))?;
            let token = text.trim();
            anyhow::ensure!(
                !token.is_empty(),
                "the admin token file {} is empty",
                path.display()
            );
            Some(token.to_owned())
        }
        (None, None) => None,
    };
    if let Some(token) = &admin_token {
        anyhow::ensure!(
            token.len() >= 16,
            "the admin token must be at least 16 characters long"
        );
    }
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.quotes.quote_fault_rate),
        "QUOTE_FAULT_RATE must be between 0 and 1"
    );
    let mut settings = Settings::embedded(&args.data_dir);
    settings.listen = SocketAddr::new(args.bind, args.port);
    if let Some(id) = args.instance_id {
        anyhow::ensure!(
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()),
            "INSTANCE_ID must be 1 to 64 visible ASCII characters"
        );
        settings.instance_id = id;
    }
    settings.admin_token = admin_token;
    settings.quote_server = args.quotes.quote_server;
    settings.builtin_quotes = quotes::BuiltinConfig {
        latency: args.quotes.quote_latency.into(),
        fault_rate: args.quotes.quote_fault_rate,
        seed: args.quotes.quote_seed,
    };
    settings.quote_ttl = Duration::from_secs(args.quotes.quote_ttl_secs);
    settings.max_batch = args.max_batch.max(1);
    settings.trigger_refresh = Duration::from_secs(args.trigger_refresh_secs.max(1));
    Ok(settings)
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let store = store::SqliteStore::open(store::SqliteOptions {
        data_dir: args.data_dir.clone(),
        server: "migrate".into(),
        clock: store::system_clock(),
        max_batch: 1,
    })?;
    store.close().await;
    println!("The database in {} is up to date.", args.data_dir.display());
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
