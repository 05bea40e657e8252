//! The command line. Every option also reads an environment variable, so
//! containers configure through the environment alone.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "daytrader",
    version,
    about = "DayTrader: a day-trading platform that scales out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log filter, as in tracing's EnvFilter (e.g. `info`, `warn,server=debug`).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub log: String,
    /// `text` for people, `json` for one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Options of `serve`, the default command.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the JSON API (the default).
    Serve(ServeArgs),
    /// Run a quote server speaking the legacy protocol.
    QuoteServer(QuoteServerArgs),
    /// Replay or generate workload files.
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate(MigrateArgs),
    /// Ask a running instance whether it is ready; exit 0 if so, 1 if not
    /// (for container health checks, which have no curl).
    Healthcheck(HealthcheckArgs),
    /// Run the cluster's trigger engine (one worker leads at a time).
    Worker(ServeArgs),
    /// Check the stored state against the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Replay the audit log through the engine and compare every user's
    /// balances, holdings, orders and triggers with what is stored; print
    /// every difference and exit non-zero if there is one.
    Verify(DatabaseArgs),
}

/// Where the data is: PostgreSQL when `DATABASE_URL` or `DB_HOST` is set,
/// else the embedded SQLite file in the data directory.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// Where the embedded database and the generated admin token live.
    #[arg(long, env = "DAYTRADER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; selects the cluster mode.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file holding the PostgreSQL URL (for container secrets).
    #[arg(long, env = "DATABASE_URL_FILE", conflicts_with = "database_url")]
    pub database_url_file: Option<PathBuf>,
    /// PostgreSQL's host, when DATABASE_URL is not given.
    #[arg(long, env = "DB_HOST")]
    pub db_host: Option<String>,
    #[arg(long, env = "DB_PORT", default_value_t = 5432)]
    pub db_port: u16,
    #[arg(long, env = "DB_NAME", default_value = "daytrader")]
    pub db_name: String,
    #[arg(long, env = "DB_USER", default_value = "daytrader")]
    pub db_user: String,
    #[arg(long, env = "DB_PASS", hide_env_values = true)]
    pub db_pass: Option<String>,
    /// A file holding the password (for container secrets).
    #[arg(long, env = "DB_PASS_FILE", conflicts_with = "db_pass")]
    pub db_pass_file: Option<PathBuf>,
    /// Connections in this process's PostgreSQL pool.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Group commits running at once in this process (PostgreSQL).
    #[arg(long, env = "DB_COMMITTERS", default_value_t = 2)]
    pub db_committers: usize,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 9999)]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, env = "BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis, shared by a cluster's instances (the quote cache).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Redis's host, when REDIS_URL is not given.
    #[arg(long, env = "REDIS_HOST")]
    pub redis_host: Option<String>,
    #[arg(long, env = "REDIS_PORT", default_value_t = 6379)]
    pub redis_port: u16,
    /// The password of a Redis that requires one (`requirepass`).
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// A file holding Redis's password (for container secrets).
    #[arg(long, env = "REDIS_PASSWORD_FILE", conflicts_with = "redis_password")]
    pub redis_password_file: Option<PathBuf>,
    /// The prefix of this deployment's keys in Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "daytrader:")]
    pub redis_prefix: String,
    /// How long one Redis operation may take before the instance goes
    /// around the cache (sessions then answer "unavailable").
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,
    /// This instance's id, sent as X-Instance-Id (default: the host name).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// The supervisor token (default: generated and kept in the data dir).
    #[arg(long, env = "DAYTRADER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the supervisor token (for container secrets).
    #[arg(
        long,
        env = "DAYTRADER_ADMIN_TOKEN_FILE",
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub quotes: QuoteArgs,
    /// The most commands committed in one transaction.
    #[arg(long, env = "MAX_BATCH", default_value_t = 1024)]
    pub max_batch: usize,
    /// Seconds between refreshes of the prices of symbols with armed triggers.
    #[arg(long, env = "TRIGGER_REFRESH_SECS", default_value_t = 5)]
    pub trigger_refresh_secs: u64,
    /// A market to try the pages on (embedded only): a few traders, their
    /// passwords shown once, and moving prices (builtin:walk, fetched
    /// every 10 s unless QUOTE_SERVER or QUOTE_TTL_SECS say otherwise).
    #[arg(long, env = "DAYTRADER_DEMO")]
    pub demo: bool,
    #[command(flatten)]
    pub events: EventArgs,
}

/// The live event streams (`GET /api/v1/users/{user}/events`).
#[derive(Args, Clone)]
pub struct EventArgs {
    /// Milliseconds an event stream may stay silent before a keep-alive
    /// comment goes out (at most 15000).
    #[arg(long, env = "EVENTS_KEEPALIVE_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..=15_000))]
    pub events_keepalive_ms: u64,
    /// Event streams one user may hold at once on one instance.
    #[arg(long, env = "EVENTS_PER_USER", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub events_per_user: u64,
    /// Event streams one instance holds at once.
    #[arg(long, env = "EVENTS_MAX_STREAMS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub events_max_streams: u64,
}

#[derive(Args, Clone)]
pub struct QuoteArgs {
    /// builtin:fixed, builtin:walk, or host:port of a quote server
    /// [default: builtin:fixed; builtin:walk with --demo].
    #[arg(long, env = "QUOTE_SERVER")]
    pub quote_server: Option<quotes::QuoteServerSetting>,
    /// The built-in quote server's latency.
    #[arg(long, env = "QUOTE_LATENCY", value_enum, default_value_t = Latency::None)]
    pub quote_latency: Latency,
    /// The built-in quote server's share of faulty replies, 0 to 1.
    #[arg(long, env = "QUOTE_FAULT_RATE", default_value_t = 0.0)]
    pub quote_fault_rate: f64,
    /// Seeds the built-in quote server's random walk and faults.
    #[arg(long, env = "QUOTE_SEED", default_value_t = 468)]
    pub quote_seed: u64,
    /// Seconds a fetched price is used [default: 60; 10 with --demo].
    #[arg(long, env = "QUOTE_TTL_SECS")]
    pub quote_ttl_secs: Option<u64>,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum Latency {
    /// Reply at once.
    None,
    /// Like the legacy server: 10 ms to 4 s, mean about 560 ms.
    Legacy,
}

impl From<Latency> for quotes::LatencyProfile {
    fn from(latency: Latency) -> Self {
        match latency {
            Latency::None => quotes::LatencyProfile::None,
            Latency::Legacy => quotes::LatencyProfile::Legacy,
        }
    }
}

#[derive(Copy, Clone, ValueEnum)]
pub enum Mode {
    /// Each symbol's price never changes (reproducible runs).
    Fixed,
    /// A seeded random walk per symbol.
    Walk,
}

#[derive(Args)]
pub struct QuoteServerArgs {
    #[arg(long, value_enum, default_value_t = Mode::Fixed)]
    pub mode: Mode,
    /// The port to listen on (the quote server's own, not PORT).
    #[arg(
        long = "port",
        id = "quote_port",
        env = "QUOTE_PORT",
        default_value_t = 4444
    )]
    pub port: u16,
    #[arg(
        long = "bind",
        id = "quote_bind",
        env = "QUOTE_BIND",
        default_value = "0.0.0.0"
    )]
    pub bind: IpAddr,
    #[arg(long, value_enum, default_value_t = Latency::None)]
    pub latency: Latency,
    /// The share of faulty replies, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    #[arg(long, default_value_t = 468)]
    pub seed: u64,
}

#[derive(Subcommand)]
pub enum WorkloadCommand {
    /// Replay a workload file against a running server.
    Run(RunArgs),
    /// Write a realistic workload file.
    Generate(GenerateArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The workload file.
    pub file: PathBuf,
    /// The server's base URL.
    #[arg(long, env = "DAYTRADER_URL", default_value = "http://127.0.0.1:9999")]
    pub target: String,
    /// A supervisor token.
    #[arg(long, env = "DAYTRADER_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where DUMPLOG answers are saved.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// The most users in flight at once (default: all).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Attempts after a transport error or 503, with the same transaction number.
    #[arg(long, default_value_t = 8)]
    pub retries: u32,
    /// Seconds one command may take, all its attempts included; also how
    /// long the target may stay unreachable before the run stops.
    #[arg(long, default_value_t = 30.0)]
    pub deadline: f64,
    /// Send command k of the file k/RATE seconds after the start (an open
    /// loop at RATE commands/s; each user's commands still go in order).
    /// Default: each user's next command as soon as the last one answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub users: usize,
    /// Lines in the file, the closing DUMPLOG included.
    #[arg(long)]
    pub commands: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The file to write (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct HealthcheckArgs {
    /// The port of the instance on this machine.
    #[arg(long, env = "PORT", default_value_t = 9999)]
    pub port: u16,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

#[derive(Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}
