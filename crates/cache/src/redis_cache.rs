//! The cache in Redis, shared by every instance of a cluster.
//!
//! Redis being down must make DayTrader slower, never stuck or broken. So:
//! the cache is built without connecting; every operation is bounded by a
//! short timeout; once an operation has failed for want of Redis, the
//! following ones fail at once (no request waits out a timeout during an
//! outage) while a background task probes Redis and turns the cache back on
//! when it answers. The connection itself is redis-rs's `ConnectionManager`:
//! one multiplexed connection, remade when it drops.

use std::fmt;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, Value};

use crate::health::Health;
use crate::{CacheError, CacheStatus, namespaced, ttl_millis};

/// A Redis cache's timing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// Each operation's limit, waiting for the connection included. Redis
    /// on the same network answers in well under a millisecond; a request
    /// that would wait longer is better off going around the cache.
    pub timeout: Duration,
    /// How often a healthy connection is pinged, so that `status()` and the
    /// `cache_up` gauge stay true without traffic, and a dead connection is
    /// found (and remade) before a request finds it.
    pub heartbeat: Duration,
    /// How often Redis is probed while it is down. Operations fail at once
    /// meanwhile, so this bounds how long the cache stays unused after
    /// Redis is back.
    pub probe: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            timeout: Duration::from_millis(250),
            heartbeat: Duration::from_secs(1),
            probe: Duration::from_millis(200),
        }
    }
}

/// How long one connection attempt may take. Longer than an operation's
/// timeout: attempts run in the background, and a slow link should still
/// get a connection eventually.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-delete: releases a lock only if it is still ours.
static DELETE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

/// A fixed-window counter: the expiry is set only when the counter has
/// none, which is when this increment created it.
static INCR_WITH_TTL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local count = redis.call('INCR', KEYS[1])
        if redis.call('PTTL', KEYS[1]) == -1 then
            redis.call('PEXPIRE', KEYS[1], ARGV[1])
        end
        return count
        ",
    )
});

/// A [`crate::Cache`] in Redis. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    /// For the event bus's subscriber connection, which pub/sub keeps apart.
    client: Client,
    prefix: Box<str>,
    config: RedisConfig,
    connection: ConnectionManager,
    health: Health,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.inner.prefix)
            .field("config", &self.inner.config)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    pub(crate) fn new(
        url: &str,
        prefix: &str,
        config: RedisConfig,
    ) -> Result<RedisCache, CacheError> {
        // The URL is left out of the message: it may hold a password.
        let client = Client::open(url)
            .map_err(|error| CacheError::Config(format!("invalid Redis URL: {error}")))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            CacheError::Config("a Redis cache must be created inside a Tokio runtime".to_owned())
        })?;
        // The manager makes one connection attempt per reconnection: the
        // probes of `watch` are what retry, at their own pace, so that no
        // request ever queues behind the manager's backoff. Operations are bounded
        // by our own timeout rather than the connection's, to have one limit
        // that covers waiting for the connection too.
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|error| {
                CacheError::Config(format!("cannot set up the Redis connection: {error}"))
            })?;
        let cache = RedisCache {
            inner: Arc::new(Inner {
                client: client.clone(),
                prefix: prefix.into(),
                config,
                connection,
                health: Health::new(prefix),
            }),
        };
        runtime.spawn(watch(Arc::downgrade(&cache.inner)));
        Ok(cache)
    }

    pub(crate) fn status(&self) -> CacheStatus {
        self.inner.health.status()
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let key = self.key(key);
        self.run(async |mut connection| {
            redis::cmd("GET")
                .arg(&key)
                .query_async(&mut connection)
                .await
        })
        .await
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self.key(key);
        self.run(async |mut connection| {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ttl_millis(ttl))
                .exec_async(&mut connection)
                .await
        })
        .await
    }

    pub(crate) async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let key = self.key(key);
        self.run(async |mut connection| {
            // `OK` when set, nil when the key was taken.
            let reply: Value = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ttl_millis(ttl))
                .query_async(&mut connection)
                .await?;
            Ok(reply != Value::Nil)
        })
        .await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let key = self.key(key);
        self.run(async |mut connection| {
            redis::cmd("DEL")
                .arg(&key)
                .exec_async(&mut connection)
                .await
        })
        .await
    }

    pub(crate) async fn delete_if_equals(
        &self,
        key: &str,
        expected: &[u8],
    ) -> Result<bool, CacheError> {
        let key = self.key(key);
        self.run(async |mut connection| {
            let deleted: i64 = DELETE_IF_EQUALS
                .key(&key)
                .arg(expected)
                .invoke_async(&mut connection)
                .await?;
            Ok(deleted == 1)
        })
        .await
    }

    pub(crate) async fn incr_with_ttl(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        self.run(async |mut connection| {
            INCR_WITH_TTL
                .key(&key)
                .arg(ttl_millis(ttl))
                .invoke_async(&mut connection)
                .await
        })
        .await
    }

    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        self.run(ping).await
    }

    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn key(&self, key: &str) -> String {
        namespaced(&self.inner.prefix, key)
    }

    /// An operation asked for by a caller: failed at once during an outage,
    /// otherwise attempted; every failure counted.
    pub(crate) async fn run<T>(
        &self,
        operation: impl AsyncFnOnce(ConnectionManager) -> RedisResult<T>,
    ) -> Result<T, CacheError> {
        let outcome = match self.inner.health.outage() {
            Some(reason) => Err(CacheError::Unavailable(reason)),
            None => self.attempt(operation).await,
        };
        if outcome.is_err() {
            metrics::counter!("cache_errors_total").increment(1);
        }
        outcome
    }

    /// One try at Redis, within the timeout, its outcome recorded in the
    /// health.
    async fn attempt<T>(
        &self,
        operation: impl AsyncFnOnce(ConnectionManager) -> RedisResult<T>,
    ) -> Result<T, CacheError> {
        let Inner {
            config,
            connection,
            health,
            ..
        } = &*self.inner;
        let error = match tokio::time::timeout(config.timeout, operation(connection.clone())).await
        {
            Ok(Ok(value)) => {
                health.answered();
                return Ok(value);
            }
            Ok(Err(error)) => classify(&error),
            Err(_) => {
                CacheError::Unavailable(format!("Redis did not answer within {:?}", config.timeout))
            }
        };
        if let CacheError::Unavailable(reason) = &error {
            health.failed(reason);
        } else {
            // Redis answered: it is up, this one operation was wrong.
            health.answered();
        }
        Err(error)
    }
}

async fn ping(mut connection: ConnectionManager) -> RedisResult<()> {
    redis::cmd("PING").exec_async(&mut connection).await
}

/// The background task of a cache: pings it on the heartbeat while it is
/// up, probes it more often while it is down (each probe also makes the
/// connection manager try to reconnect), and ends when the cache is dropped.
async fn watch(cache: Weak<Inner>) {
    loop {
        let Some(inner) = cache.upgrade() else {
            return;
        };
        let cache = RedisCache { inner };
        // The outcome is recorded in the health, which is all a probe is for.
        let _ = cache.attempt(ping).await;
        let config = cache.inner.config;
        let pause = if cache.inner.health.is_up() {
            config.heartbeat
        } else {
            config.probe
        };
        // Not held while asleep, so that dropping the last handle ends us.
        drop(cache);
        tokio::time::sleep(pause).await;
    }
}

/// Whether an error means Redis cannot be used right now (an outage: go
/// around the cache until it is back) or that Redis answered and refused
/// this one operation.
fn classify(error: &RedisError) -> CacheError {
    // A Redis that wants a password this client did not give, or not the
    // right one, refuses every operation: as good as down, and readiness
    // must say so rather than report a cache that works.
    if error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        return CacheError::Unavailable(format!(
            "Redis refuses this client ({error}); is REDIS_PASSWORD set right?"
        ));
    }
    let answered = match error.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => false,
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => true,
        // Any other error reply from the server: it is there and talking.
        _ => error.code().is_some(),
    };
    if answered {
        CacheError::Refused(error.to_string())
    } else {
        CacheError::Unavailable(error.to_string())
    }
}
