//! `daytrader serve`, `daytrader worker` and `daytrader migrate`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use server::admin_token::TokenSource;
use server::settings::Database;
use store::Writes;

use crate::cli::{MigrateArgs, ServeArgs};
use crate::config;

/// Serves until SIGTERM or Ctrl-C, then drains.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    server::app::survive_file_size_limit();
    let settings = config::settings(args)?;
    let signal = shutdown_signal();
    let storage = describe(&settings.database);
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
    if let Some(demo) = &running.demo {
        print_demo(demo, running.addr.port());
    }
    // Last, on stdout: scripts wait for this line, by then all is said.
    println!(
        "DayTrader listening on http://{} (instance {instance}, {storage})",
        running.addr
    );
    signal.await;
    tracing::info!("shutting down: finishing requests in flight");
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The demo's traders: passwords the one time they are known.
fn print_demo(demo: &server::demo::Seeded, port: u16) {
    if !demo.created.is_empty() {
        println!(
            "Demo traders (passwords shown only now; sign in at http://localhost:{port}/login):"
        );
        for (user, password) in &demo.created {
            println!("  {user:<8} {password}");
        }
    }
    if !demo.existing.is_empty() {
        let names: Vec<&str> = demo.existing.iter().map(|u| u.as_str()).collect();
        println!(
            "Demo traders {} exist already; their passwords were shown when they were made \
             (stop the server and delete the data directory to start over).",
            names.join(", ")
        );
    }
}

/// Runs the trigger worker, with its health endpoint on PORT.
pub async fn worker(args: ServeArgs) -> anyhow::Result<ExitCode> {
    server::app::survive_file_size_limit();
    let settings = config::settings(args)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let listener_addr = listener.local_addr()?;
    let signal = shutdown_signal();
    let leading = server::worker::Leading::default();
    let (stop, shutdown) = server::shutdown::channel();
    let health = server::worker::health_router(leading.clone());
    let health_shutdown = shutdown.clone();
    let health = tokio::spawn(server::app::serve(listener, health, health_shutdown));
    println!(
        "DayTrader worker listening on http://{} (instance {})",
        listener_addr, settings.instance_id
    );
    let work = tokio::spawn(server::worker::run(settings, leading, shutdown));
    signal.await;
    stop.fire();
    work.await??;
    health.await??;
    Ok(ExitCode::SUCCESS)
}

/// Creates or upgrades the schema, then exits.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let database = config::database(&args.database)?;
    match &database {
        Database::Sqlite { data_dir } => {
            let store = store::SqliteStore::open(store::SqliteOptions {
                data_dir: data_dir.clone(),
                server: "migrate".into(),
                clock: store::system_clock(),
                max_batch: 1,
            })?;
            store.close().await;
        }
        Database::Postgres { url, .. } => {
            let store = store::PgStore::connect(store::PgOptions::new(
                url.clone(),
                "migrate".into(),
                store::system_clock(),
            ));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !store.is_ready() {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "PostgreSQL did not answer within 60 s"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            store.close().await;
        }
    }
    println!("The database ({}) is up to date.", describe(&database));
    Ok(ExitCode::SUCCESS)
}

/// Where the data is, for start-up lines (never the password).
pub fn describe(database: &Database) -> String {
    match database {
        Database::Sqlite { data_dir } => format!("data {}", data_dir.display()),
        Database::Postgres { url, .. } => {
            let host = url.rsplit_once('@').map_or(url.as_str(), |(_, host)| host);
            format!("PostgreSQL at {host}")
        }
    }
}

/// Listens for SIGTERM and Ctrl-C from now on, and resolves at the first.
/// The SIGTERM handler is installed at once, before the banner says the
/// server is up: a signal sent as soon as the banner is read would
/// otherwise meet the default action and kill the process uncleanly.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}
