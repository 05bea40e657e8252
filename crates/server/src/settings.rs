//! Typed configuration of a serving instance. The binary fills it from
//! flags and the environment; tests build it directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quotes::{BuiltinConfig, ClientConfig, QuoteServerSetting};

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Database {
    /// Embedded: a SQLite file in `data_dir`, one process.
    Sqlite { data_dir: PathBuf },
    /// Cluster: PostgreSQL, shared by every instance.
    Postgres {
        url: String,
        pool_size: u32,
        /// Group commits running at once in this instance.
        committers: usize,
    },
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: Database,
    /// Where the generated admin token is kept (embedded mode only).
    pub data_dir: PathBuf,
    /// Redis, shared by the instances of a cluster; `None` keeps the quote
    /// cache in process.
    pub redis_url: Option<String>,
    /// The prefix of every key in the shared cache, so that deployments
    /// (or tests) sharing a Redis never meet.
    pub cache_prefix: String,
    /// Each Redis operation's limit (`cache::RedisConfig::timeout`).
    pub redis_timeout: Duration,
    /// Sent as `X-Instance-Id` and recorded as `server` in the audit log.
    pub instance_id: String,
    /// The supervisor's token; generated and kept in the data directory
    /// when not given.
    pub admin_token: Option<String>,
    pub quote_server: QuoteServerSetting,
    pub builtin_quotes: BuiltinConfig,
    pub quote_client: ClientConfig,
    /// How long a fetched price is used.
    pub quote_ttl: Duration,
    /// The most commands in one group commit.
    pub max_batch: usize,
    /// How often the prices of symbols with armed triggers are refreshed.
    pub trigger_refresh: Duration,
    /// Whether this process does the lead's periodic work itself
    /// (refreshing those prices, and expiring pending orders on time): yes
    /// when embedded; in a cluster the leading `daytrader worker` does.
    pub refresh_triggers: bool,
    /// Seed the demo traders at start (`serve --demo`, embedded only).
    pub demo: bool,
    /// The live event streams' bounds and keep-alive.
    pub events: EventSettings,
}

/// The live event streams (`GET /api/v1/users/{user}/events`).
#[derive(Copy, Clone, Debug)]
pub struct EventSettings {
    /// The bus's bounds: streams per user and per instance, queue and ring
    /// sizes.
    pub bus: cache::BusConfig,
    /// How often an idle stream gets a comment line, which keeps it open
    /// through balancers and tells the client it is alive (SPEC 4b: at
    /// least every 15 s).
    pub keepalive: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            bus: cache::BusConfig::default(),
            keepalive: Duration::from_secs(15),
        }
    }
}

impl Settings {
    /// The embedded defaults: port 9999 on every interface, `./data`, the
    /// built-in fixed-price quote server.
    pub fn embedded(data_dir: &Path) -> Settings {
        Settings {
            listen: SocketAddr::from(([0, 0, 0, 0], 9999)),
            database: Database::Sqlite {
                data_dir: data_dir.to_path_buf(),
            },
            data_dir: data_dir.to_path_buf(),
            redis_url: None,
            cache_prefix: "daytrader:".to_owned(),
            redis_timeout: cache::RedisConfig::default().timeout,
            instance_id: default_instance_id(),
            admin_token: None,
            quote_server: QuoteServerSetting::Builtin(quotes::BuiltinPrices::Fixed),
            builtin_quotes: BuiltinConfig::default(),
            quote_client: ClientConfig::default(),
            quote_ttl: Duration::from_secs(60),
            max_batch: 1024,
            trigger_refresh: Duration::from_secs(5),
            refresh_triggers: true,
            demo: false,
            events: EventSettings::default(),
        }
    }
}

/// The host name, which is what tells instances apart in a cluster.
pub fn default_instance_id() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let name = if ok {
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "daytrader".to_owned()
    } else {
        name
    }
}
