//! Where the client's requests go: a quote server over TCP, or the built-in
//! one in process. Past the transport both paths are the same: the reply
//! line goes through the same validation.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::protocol::MAX_REPLY_LEN;
use crate::server::{InvalidFaultRate, PriceMode, QuoteServerConfig, QuoteServerCore};
use crate::{LatencyProfile, QuoteError};

/// The `QUOTE_SERVER` setting: `builtin:fixed`, `builtin:walk` or
/// `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuoteServerSetting {
    Builtin(BuiltinPrices),
    /// `host:port` of a server speaking the legacy protocol.
    Remote(String),
}

/// The price mode of the built-in server, as named in `QUOTE_SERVER`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BuiltinPrices {
    Fixed,
    Walk,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "QUOTE_SERVER must be builtin:fixed, builtin:walk or host:port (e.g. quotes.example.com:4444), not {0:?}"
)]
pub struct InvalidQuoteServer(pub String);

impl FromStr for QuoteServerSetting {
    type Err = InvalidQuoteServer;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidQuoteServer(text.to_owned());
        match text {
            "builtin:fixed" => return Ok(QuoteServerSetting::Builtin(BuiltinPrices::Fixed)),
            "builtin:walk" => return Ok(QuoteServerSetting::Builtin(BuiltinPrices::Walk)),
            _ => {}
        }
        // rsplit: an IPv6 host ("[::1]:4444") has colons of its own.
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        let host_ok = !host.is_empty()
            && host != "builtin"
            && !host.bytes().any(|b| b.is_ascii_whitespace() || b == b',');
        let port_ok =
            port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p != 0);
        if host_ok && port_ok {
            Ok(QuoteServerSetting::Remote(text.to_owned()))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for QuoteServerSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuoteServerSetting::Builtin(BuiltinPrices::Fixed) => f.write_str("builtin:fixed"),
            QuoteServerSetting::Builtin(BuiltinPrices::Walk) => f.write_str("builtin:walk"),
            QuoteServerSetting::Remote(address) => f.write_str(address),
        }
    }
}

/// The built-in server's settings other than its price mode, which
/// `QUOTE_SERVER` names.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct BuiltinConfig {
    pub latency: LatencyProfile,
    pub fault_rate: f64,
    /// Seeds the walk as well as latency, faults and keys.
    pub seed: u64,
}

/// Where a [`crate::QuoteClient`] sends its requests.
#[derive(Clone, Debug)]
pub enum QuoteSource {
    /// A quote server at `host:port`.
    Tcp(String),
    /// The built-in server's core, run in process: no socket, but the same
    /// replies, delays and faults.
    Builtin(Arc<QuoteServerCore>),
}

impl QuoteSource {
    pub fn from_setting(
        setting: &QuoteServerSetting,
        builtin: BuiltinConfig,
    ) -> Result<QuoteSource, InvalidFaultRate> {
        let mode = match setting {
            QuoteServerSetting::Remote(address) => return Ok(QuoteSource::Tcp(address.clone())),
            QuoteServerSetting::Builtin(BuiltinPrices::Fixed) => PriceMode::Fixed,
            QuoteServerSetting::Builtin(BuiltinPrices::Walk) => {
                PriceMode::Walk { seed: builtin.seed }
            }
        };
        let core = QuoteServerCore::new(QuoteServerConfig {
            mode,
            latency: builtin.latency,
            fault_rate: builtin.fault_rate,
            seed: builtin.seed,
        })?;
        Ok(QuoteSource::Builtin(Arc::new(core)))
    }

    /// Sends one request line and returns the raw reply line, unvalidated.
    /// Not bounded in time: the caller puts a timeout around it.
    pub(crate) async fn exchange(&self, request: &str) -> Result<String, QuoteError> {
        match self {
            QuoteSource::Tcp(address) => exchange_tcp(address, request).await,
            QuoteSource::Builtin(core) => {
                let response = core.respond(request);
                tokio::time::sleep(response.delay).await;
                response.reply.ok_or(QuoteError::Closed)
            }
        }
    }
}

async fn exchange_tcp(address: &str, request: &str) -> Result<String, QuoteError> {
    let io_error = |error| QuoteError::Io(Arc::new(error));
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|error| QuoteError::Connect(Arc::new(error)))?;
    // One small write then a wait: Nagle would only add delay. Failing to
    // set it changes nothing else, so the error is ignored.
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    let mut reply = Vec::with_capacity(128);
    // One byte more than the limit, so an over-long reply is seen as such
    // by the parser instead of arriving cut to an acceptable length.
    BufReader::new(stream)
        .take(MAX_REPLY_LEN as u64 + 1)
        .read_until(b'\n', &mut reply)
        .await
        .map_err(io_error)?;
    if reply.is_empty() {
        return Err(QuoteError::Closed);
    }
    String::from_utf8(reply).map_err(|_| QuoteError::garbage("the reply is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_quote_server_setting() {
        for (text, setting) in [
            (
                "builtin:fixed",
                QuoteServerSetting::Builtin(BuiltinPrices::Fixed),
            ),
            (
                "builtin:walk",
                QuoteServerSetting::Builtin(BuiltinPrices::Walk),
            ),
            (
                "quoteserve.seng.uvic.ca:4444",
                QuoteServerSetting::Remote("quoteserve.seng.uvic.ca:4444".into()),
            ),
            (
                "127.0.0.1:4444",
                QuoteServerSetting::Remote("127.0.0.1:4444".into()),
            ),
            (
                "[::1]:4444",
                QuoteServerSetting::Remote("[::1]:4444".into()),
            ),
        ] {
            assert_eq!(
                text.parse::<QuoteServerSetting>(),
                Ok(setting.clone()),
                "{text}"
            );
            assert_eq!(setting.to_string(), text);
        }
    }

    #[test]
    fn refuses_anything_else_clearly() {
        for text in [
            "",
            "builtin",
            "builtin:",
            "builtin:random",
            "localhost",
            "localhost:",
            ":4444",
            "host:0",
            "host:65536",
            "host:+80",
            "host:http",
            "a host:80",
            "host,x:80",
        ] {
            let error = text.parse::<QuoteServerSetting>().unwrap_err();
            assert_eq!(error, InvalidQuoteServer(text.into()));
            assert!(
                error
                    .to_string()
                    .contains("builtin:fixed, builtin:walk or host:port"),
                "{error}"
            );
        }
    }

    #[test]
    fn builds_the_builtin_from_its_own_config() {
        let setting = QuoteServerSetting::Builtin(BuiltinPrices::Walk);
        assert!(matches!(
            QuoteSource::from_setting(&setting, BuiltinConfig::default()),
            Ok(QuoteSource::Builtin(_))
        ));
        let faulty = BuiltinConfig {
            fault_rate: 2.0,
            ..BuiltinConfig::default()
        };
        assert_eq!(
            QuoteSource::from_setting(&setting, faulty).unwrap_err(),
            InvalidFaultRate(2.0)
        );
        let remote = QuoteServerSetting::Remote("h:1".into());
        assert!(
            matches!(QuoteSource::from_setting(&remote, faulty), Ok(QuoteSource::Tcp(a)) if a == "h:1")
        );
    }
}
