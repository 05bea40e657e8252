//! The cache DayTrader's instances share.
//!
//! Instances are stateless, so whatever they must agree on (the quote
//! cache, web sessions with their CSRF secrets, failed sign-in counters,
//! one-time messages and the page cache) lives in Redis in cluster mode
//! and in process in embedded mode. [`Cache`] is both behind one interface
//! with the same semantics, so the code above it — and its tests — do not
//! care which one runs.
//!
//! Redis is a cache here, never the source of truth: when it is down every
//! operation fails fast with [`CacheError::Unavailable`] and callers go
//! around it (slower, still correct), and the connection comes back by
//! itself when Redis does.

mod bus;
mod error;
mod health;
mod memory;
mod redis_cache;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use bytes::Bytes;

pub use bus::{
    BusConfig, BusError, BusEvent, EventBus, EventId, QuoteEvent, Registration, Resume,
    Subscription,
};
pub use error::CacheError;
pub use health::CacheStatus;
pub use memory::MemoryCache;
pub use redis_cache::{RedisCache, RedisConfig};

/// A key-value cache with expiry, in Redis or in memory.
///
/// Every key is prefixed with the namespace the cache was built with
/// (prepended as is: end it with `:` by convention), so that deployments and
/// tests sharing one Redis never see each other's keys. Every value has a
/// time to live, rounded up to whole milliseconds (at least one): nothing
/// stays in a cache forever.
///
/// Cheap to clone; clones share the connection (or the map).
#[derive(Clone, Debug)]
pub enum Cache {
    Redis(RedisCache),
    Memory(MemoryCache),
}

impl Cache {
    /// A cache in the Redis at `url` (`redis://host:port/`), with the
    /// default [`RedisConfig`].
    ///
    /// Does not connect: the connection is made in the background and
    /// remade whenever it is lost, so a Redis that is down at start delays
    /// nothing. Fails only on a malformed URL, or outside a Tokio runtime
    /// (the connection lives on the runtime's tasks).
    pub fn redis(url: &str, prefix: &str) -> Result<Cache, CacheError> {
        Cache::redis_with_config(url, prefix, RedisConfig::default())
    }

    /// [`Cache::redis`] with its timeouts chosen.
    pub fn redis_with_config(
        url: &str,
        prefix: &str,
        config: RedisConfig,
    ) -> Result<Cache, CacheError> {
        RedisCache::new(url, prefix, config).map(Cache::Redis)
    }

    /// A cache in this process's memory: for embedded mode and fast tests.
    pub fn memory(prefix: &str) -> Cache {
        Cache::Memory(MemoryCache::new(prefix))
    }

    /// The value at `key`, if it is there and has not expired.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        match self {
            Cache::Redis(redis) => redis.get(key).await,
            Cache::Memory(memory) => Ok(memory.get(key)),
        }
    }

    /// Stores `value` at `key` for `ttl`, replacing any value and expiry.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        match self {
            Cache::Redis(redis) => redis.set(key, value, ttl).await,
            Cache::Memory(memory) => {
                memory.set(key, value, ttl);
                Ok(())
            }
        }
    }

    /// Stores `value` at `key` for `ttl` only if `key` holds nothing; `true`
    /// if it did. Across everything sharing the cache exactly one of
    /// concurrent callers wins, which makes it a lock whose `ttl` frees it
    /// should its holder die.
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        match self {
            Cache::Redis(redis) => redis.set_nx(key, value, ttl).await,
            Cache::Memory(memory) => Ok(memory.set_nx(key, value, ttl)),
        }
    }

    /// Removes `key`; removing a missing key is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Redis(redis) => redis.delete(key).await,
            Cache::Memory(memory) => {
                memory.delete(key);
                Ok(())
            }
        }
    }

    /// Removes `key` only if it holds `expected`, atomically; `true` if it
    /// did. Releases a [`Cache::set_nx`] lock without the risk of releasing
    /// someone else's, taken after ours expired.
    pub async fn delete_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool, CacheError> {
        match self {
            Cache::Redis(redis) => redis.delete_if_equals(key, expected).await,
            Cache::Memory(memory) => Ok(memory.delete_if_equals(key, expected)),
        }
    }

    /// Adds one to the counter at `key` and returns the new count. A new
    /// counter starts at 1 and lives for `ttl` from then; later increments
    /// do not extend it (a fixed window, for rate limits). A key holding
    /// something other than an integer is [`CacheError::Refused`].
    pub async fn incr_with_ttl(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        match self {
            Cache::Redis(redis) => redis.incr_with_ttl(key, ttl).await,
            Cache::Memory(memory) => memory.incr_with_ttl(key, ttl),
        }
    }

    /// Checks that the cache answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::Redis(redis) => redis.ping().await,
            Cache::Memory(_) => Ok(()),
        }
    }

    /// Whether the cache is usable, as last seen. An in-memory cache always
    /// is.
    pub fn status(&self) -> CacheStatus {
        match self {
            Cache::Redis(redis) => redis.status(),
            Cache::Memory(_) => CacheStatus::Up,
        }
    }
}

/// The URL of the Redis at `host:port`, for configurations that name the
/// two (`REDIS_HOST`) rather than a URL. An IPv6 address is bracketed.
pub fn redis_url(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("redis://[{host}]:{port}/")
    } else {
        format!("redis://{host}:{port}/")
    }
}

/// `url` with `password` in it, for configurations that keep the password
/// apart from the URL (`REDIS_PASSWORD`, a secret file). It is
/// percent-encoded, so any character may appear in it. A URL that holds a
/// password already is refused: with two, which one counts would be a
/// guess.
pub fn redis_url_with_password(url: &str, password: &str) -> Result<String, CacheError> {
    // The URL is left out of the messages: it may hold a password.
    let mut parsed = url::Url::parse(url)
        .map_err(|error| CacheError::Config(format!("invalid Redis URL: {error}")))?;
    if parsed.password().is_some() {
        return Err(CacheError::Config(
            "the Redis URL holds a password already; give it there or apart, not both".to_owned(),
        ));
    }
    parsed
        .set_password(Some(password))
        .map_err(|()| CacheError::Config("this Redis URL cannot hold a password".to_owned()))?;
    Ok(parsed.into())
}

/// `key` in the namespace `prefix`.
fn namespaced(prefix: &str, key: &str) -> String {
    let mut full = String::with_capacity(prefix.len() + key.len());
    full.push_str(prefix);
    full.push_str(key);
    full
}

/// A time to live in whole milliseconds, rounded up and at least one: Redis
/// refuses a zero expiry, and both back ends must expire alike.
fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_urls_from_host_and_port() {
        assert_eq!(redis_url("127.0.0.1", 6379), "redis://127.0.0.1:6379/");
        assert_eq!(redis_url("redis", 6380), "redis://redis:6380/");
        assert_eq!(redis_url("::1", 6379), "redis://[::1]:6379/");
        assert_eq!(redis_url("[::1]", 6379), "redis://[::1]:6379/");
    }

    #[test]
    fn puts_a_password_into_a_url_and_redis_reads_it_back() {
        use redis::IntoConnectionInfo;
        let password = "p@ss:w/rd #1%";
        for url in ["redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/2"] {
            let with = redis_url_with_password(url, password).unwrap();
            assert!(!with.contains(password), "encoded: {with}");
            let info = with.as_str().into_connection_info().unwrap();
            assert_eq!(info.redis_settings().password(), Some(password));
        }
        let twice = redis_url_with_password("redis://:old@127.0.0.1:6379/", "new");
        assert!(matches!(twice, Err(CacheError::Config(_))));
        assert!(redis_url_with_password("not a url", "x").is_err());
    }

    #[test]
    fn rounds_ttls_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(60)), 60_000);
        assert_eq!(ttl_millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn prefixes_keys_as_given() {
        assert_eq!(namespaced("daytrader:", "quote:ABC"), "daytrader:quote:ABC");
        assert_eq!(namespaced("", "k"), "k");
    }
}
