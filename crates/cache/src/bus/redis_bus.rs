//! The bus over Redis, for a cluster.
//!
//! Keys and channels, under the cache's prefix:
//!
//! - `events:watch:{user}`: present while someone streams the user's
//!   events (and [`BusConfig::retain`] after); events of other users are
//!   dropped by the publishing script;
//! - `events:seq:{user}`: a hash of the ring's `epoch` and newest `n`;
//! - `events:ring:{user}`: the user's last [`BusConfig::ring`] events, as
//!   published;
//! - channel `events:u:{user}`: the user's events, as `epoch.n <data>`;
//! - channel `events:quotes`: quote events, as `<symbol> <data>`.
//!
//! Every instance holds one subscriber connection on `events:u:*` and
//! `events:quotes` and hands what arrives to the streams it holds. When
//! that connection drops it is remade (and logged); the streams held here
//! are ended then, since they may have missed events, and their clients
//! resume from the rings.

use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use redis::{Script, Value};
use tokio::sync::{mpsc, watch};

use super::local::Local;
use super::{BusConfig, BusEvent, EventId, QuoteEvent, Resume, resume_from};
use crate::redis_cache::RedisCache;
use crate::{CacheError, ttl_millis};

/// Publications waiting for Redis; beyond this many, new ones are dropped
/// (and counted) rather than held: Redis is down or far behind.
const OUTBOX: usize = 4096;
/// Publications in flight on the connection at once.
const IN_FLIGHT: usize = 32;
/// How long making the subscriber connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause before the subscriber connection is tried again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Numbers an event, keeps it in the ring and publishes it, if the user is
/// watched. KEYS: watch, seq, ring. ARGV: channel, data, ring size, ttl ms,
/// now ms (the epoch of a new ring).
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 0 then
            return 0
        end
        redis.call('HSETNX', KEYS[2], 'epoch', ARGV[5])
        local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        local message = epoch .. '.' .. n .. ' ' .. ARGV[2]
        redis.call('RPUSH', KEYS[3], message)
        redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        redis.call('PEXPIRE', KEYS[3], ARGV[4])
        redis.call('PUBLISH', ARGV[1], message)
        return 1
        ",
    )
});

/// Marks a user watched (for ttl ms) and answers their ring: `{epoch, n,
/// {events...}}`. KEYS: watch, seq, ring. ARGV: ttl ms, now ms.
static WATCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
        redis.call('HSETNX', KEYS[2], 'epoch', ARGV[2])
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        redis.call('PEXPIRE', KEYS[3], ARGV[1])
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        local n = redis.call('HGET', KEYS[2], 'n') or '0'
        return {epoch, n, redis.call('LRANGE', KEYS[3], 0, -1)}
        ",
    )
});

enum Outgoing {
    User { user: String, data: String },
    Quote(QuoteEvent),
}

pub(crate) struct RedisBus {
    cache: RedisCache,
    config: BusConfig,
    outbox: mpsc::Sender<Outgoing>,
    /// Dropped with the bus, which ends its background tasks.
    _alive: watch::Sender<()>,
}

impl RedisBus {
    /// The bus, with its publisher, subscriber and watch-keeping tasks.
    pub(crate) fn start(cache: &RedisCache, config: BusConfig, local: Arc<Local>) -> RedisBus {
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let (alive, stopped) = watch::channel(());
        tokio::spawn(publisher(cache.clone(), config, queued));
        tokio::spawn(subscriber(
            cache.clone(),
            Arc::downgrade(&local),
            stopped.clone(),
        ));
        tokio::spawn(keep_watching(
            cache.clone(),
            config,
            Arc::downgrade(&local),
            stopped,
        ));
        RedisBus {
            cache: cache.clone(),
            config,
            outbox,
            _alive: alive,
        }
    }

    pub(crate) fn publish(&self, user: &str, data: String) {
        self.send(Outgoing::User {
            user: user.to_owned(),
            data,
        });
    }

    pub(crate) fn publish_quote(&self, event: QuoteEvent) {
        self.send(Outgoing::Quote(event));
    }

    fn send(&self, outgoing: Outgoing) {
        if self.outbox.try_send(outgoing).is_err() {
            metrics::counter!("events_dropped_total").increment(1);
        }
    }

    /// Marks `user` watched and answers what a stream resuming after
    /// `last_seen` replays.
    pub(crate) async fn watch(
        &self,
        user: &str,
        last_seen: Option<EventId>,
    ) -> Result<Resume, CacheError> {
        let keys = UserKeys::of(&self.cache, user);
        let ttl = ttl_millis(self.config.retain);
        let reply: Value = self
            .cache
            .run(async |mut connection| {
                WATCH
                    .key(&keys.watch)
                    .key(&keys.seq)
                    .key(&keys.ring)
                    .arg(ttl)
                    .arg(now_ms())
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let (newest, held) = parse_ring(reply)
            .ok_or_else(|| CacheError::Refused("unexpected reply to the ring's script".into()))?;
        Ok(resume_from(&held, newest, last_seen))
    }
}

struct UserKeys {
    watch: String,
    seq: String,
    ring: String,
    channel: String,
}

impl UserKeys {
    fn of(cache: &RedisCache, user: &str) -> UserKeys {
        UserKeys {
            watch: cache.key(&format!("events:watch:{user}")),
            seq: cache.key(&format!("events:seq:{user}")),
            ring: cache.key(&format!("events:ring:{user}")),
            channel: cache.key(&format!("events:u:{user}")),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Publishes what is queued, a few at a time, until the bus is dropped.
/// A publication that fails is dropped and counted: commands never wait
/// on it.
async fn publisher(cache: RedisCache, config: BusConfig, queued: mpsc::Receiver<Outgoing>) {
    let queued = futures::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|outgoing| (outgoing, queued))
    });
    queued
        .map(|outgoing| publish_one(&cache, config, outgoing))
        .buffered(IN_FLIGHT)
        .for_each(|outcome| async move {
            if let Err(error) = outcome {
                metrics::counter!("events_dropped_total").increment(1);
                tracing::debug!(%error, "an event could not be published");
            }
        })
        .await;
}

async fn publish_one(
    cache: &RedisCache,
    config: BusConfig,
    outgoing: Outgoing,
) -> Result<(), CacheError> {
    match outgoing {
        Outgoing::User { user, data } => {
            let keys = UserKeys::of(cache, &user);
            let ring = config.ring.max(1);
            let ttl = ttl_millis(config.retain);
            cache
                .run(async |mut connection| {
                    PUBLISH
                        .key(&keys.watch)
                        .key(&keys.seq)
                        .key(&keys.ring)
                        .arg(&keys.channel)
                        .arg(&data)
                        .arg(ring)
                        .arg(ttl)
                        .arg(now_ms())
                        .invoke_async::<i64>(&mut connection)
                        .await
                })
                .await?;
        }
        Outgoing::Quote(event) => {
            let channel = cache.key("events:quotes");
            let message = format!("{} {}", event.symbol, event.data);
            cache
                .run(async |mut connection| {
                    redis::cmd("PUBLISH")
                        .arg(&channel)
                        .arg(&message)
                        .exec_async(&mut connection)
                        .await
                })
                .await?;
        }
    }
    Ok(())
}

/// The instance's subscriber connection: hands every message to the
/// streams held here, and is remade whenever it is lost. Losing it is
/// logged once, and so is getting it back.
async fn subscriber(cache: RedisCache, local: Weak<Local>, mut stopped: watch::Receiver<()>) {
    let users = cache.key("events:u:");
    let quotes = cache.key("events:quotes");
    // Whether Redis is lost (and not yet regained), to log each change once.
    let mut lost = false;
    loop {
        let attempt = async {
            let connect = async {
                let mut pubsub = cache.client().get_async_pubsub().await?;
                pubsub.psubscribe(format!("{users}*")).await?;
                pubsub.subscribe(&quotes).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(pubsub)) => Ok(pubsub),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("Redis did not take the subscription in time".to_owned()),
            }
        };
        let pubsub = tokio::select! {
            _ = stopped.changed() => return,
            pubsub = attempt => pubsub,
        };
        match pubsub {
            Ok(mut pubsub) => {
                if lost {
                    tracing::info!("the event bus's subscriber has Redis again");
                }
                let delivering = async {
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Some(local) = local.upgrade() else {
                            return;
                        };
                        deliver(&local, &users, &message);
                    }
                };
                tokio::select! {
                    _ = stopped.changed() => return,
                    () = delivering => {}
                }
                let Some(held) = local.upgrade() else {
                    return;
                };
                tracing::warn!("the event bus's subscriber lost Redis; reconnecting");
                lost = true;
                // Events may have gone by meanwhile: end the streams held
                // here, whose clients resume from the rings.
                held.end_all();
            }
            Err(error) => {
                if !lost {
                    tracing::warn!(%error, "the event bus's subscriber cannot reach Redis; retrying");
                    lost = true;
                }
            }
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}

/// Hands one message of the subscriber connection to the streams held
/// here: a user's event to theirs, a quote event to all.
fn deliver(local: &Local, users: &str, message: &redis::Msg) {
    let Ok(payload) = message.get_payload::<String>() else {
        return;
    };
    if let Some(user) = message.get_channel_name().strip_prefix(users) {
        if let Some(event) = parse_event(&payload) {
            local.deliver(user, &event);
        }
    } else if let Some((symbol, data)) = payload.split_once(' ') {
        local.deliver_quote(QuoteEvent {
            symbol: symbol.into(),
            data: data.into(),
        });
    }
}

/// Keeps the users streamed here marked watched (and their rings alive)
/// while their streams last.
async fn keep_watching(
    cache: RedisCache,
    config: BusConfig,
    local: Weak<Local>,
    mut stopped: watch::Receiver<()>,
) {
    let period = (config.retain / 4).max(Duration::from_millis(100));
    let ttl = ttl_millis(config.retain);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(period) => {}
        }
        let Some(users) = local.upgrade().map(|local| local.users()) else {
            return;
        };
        if users.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for user in &users {
            let keys = UserKeys::of(&cache, user);
            pipe.cmd("SET")
                .arg(&keys.watch)
                .arg("1")
                .arg("PX")
                .arg(ttl)
                .ignore();
            pipe.cmd("PEXPIRE").arg(&keys.seq).arg(ttl).ignore();
            pipe.cmd("PEXPIRE").arg(&keys.ring).arg(ttl).ignore();
        }
        let outcome = cache
            .run(async |mut connection| pipe.exec_async(&mut connection).await)
            .await;
        if let Err(error) = outcome {
            tracing::debug!(%error, "could not keep the streamed users watched");
        }
    }
}

/// An event as published: `epoch.n <data>`.
fn parse_event(message: &str) -> Option<BusEvent> {
    let (id, data) = message.split_once(' ')?;
    Some(BusEvent {
        id: EventId::parse(id)?,
        data: data.into(),
    })
}

/// The [`WATCH`] script's reply: the newest id and the ring, oldest first.
fn parse_ring(reply: Value) -> Option<(EventId, Vec<BusEvent>)> {
    let Value::Array(parts) = reply else {
        return None;
    };
    let [epoch, n, ring] = <[Value; 3]>::try_from(parts).ok()?;
    let number = |value: Value| -> Option<u64> { redis::from_redis_value::<u64>(value).ok() };
    let newest = EventId {
        epoch: number(epoch)?,
        n: number(n)?,
    };
    let ring: Vec<String> = redis::from_redis_value(ring).ok()?;
    let held = ring.iter().filter_map(|message| parse_event(message));
    Some((newest, held.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_as_published() {
        let event = parse_event(r#"17.3 {"type":"account"}"#).unwrap();
        assert_eq!(event.id, EventId { epoch: 17, n: 3 });
        assert_eq!(&*event.data, r#"{"type":"account"}"#);
        assert_eq!(parse_event("garbage"), None);
    }
}
