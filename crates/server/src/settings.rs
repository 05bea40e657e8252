//! Typed configuration of a serving instance. The binary fills it from
//! flags and the environment; tests build it directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quotes::{BuiltinConfig, ClientConfig, QuoteServerSetting};

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Where the embedded database and the generated admin token live.
    pub data_dir: PathBuf,
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
}

impl Settings {
    /// The embedded defaults: port 9999 on every interface, `./data`, the
    /// built-in fixed-price quote server.
    pub fn embedded(data_dir: &Path) -> Settings {
        Settings {
            listen: SocketAddr::from(([0, 0, 0, 0], 9999)),
            data_dir: data_dir.to_path_buf(),
            instance_id: default_instance_id(),
            admin_token: None,
            quote_server: QuoteServerSetting::Builtin(quotes::BuiltinPrices::Fixed),
            builtin_quotes: BuiltinConfig::default(),
            quote_client: ClientConfig::default(),
            quote_ttl: Duration::from_secs(60),
            max_batch: 1024,
            trigger_refresh: Duration::from_secs(5),
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
