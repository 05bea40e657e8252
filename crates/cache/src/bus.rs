//! The event bus behind the live event streams: what happens to a user's
//! account on any instance reaches the streams that user holds on any
//! instance.
//!
//! Two kinds of messages travel on it:
//!
//! - a user's events, each with an id (`epoch.n`, increasing per user), kept
//!   in a small ring per user so that a stream that reconnects with
//!   `Last-Event-ID` gets what it missed;
//! - quote events, one per symbol whose price was fetched, without an id: a
//!   price is a latest value, and a client that missed one reads the
//!   current price again when it resyncs.
//!
//! Embedded, the bus is this process's memory. In a cluster it is Redis:
//! each publication runs one script that numbers the event, appends it to the
//! user's ring and publishes it; each instance holds one subscriber
//! connection, subscribed to every user channel of the deployment, and fans
//! what arrives out to the streams it holds (see [`redis_bus`]).
//!
//! Only users someone listens to are numbered and kept: a stream marks its
//! user watched, and the mark outlives the stream by
//! [`BusConfig::retain`] so that a reconnect finds the ring. Events of
//! users nobody watches are dropped at once, which keeps a busy workload of
//! users without streams nearly free.
//!
//! Publishing never blocks and never fails its caller: a command's outcome
//! does not depend on the bus. Embedded it is a map update; in a cluster it
//! queues for a background task, and when that queue is full (Redis far
//! behind) the event is dropped and counted.

mod local;
pub(crate) mod redis_bus;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::{Cache, CacheError};

pub use local::Registration;
use local::{Local, MemoryRings, Watching};

/// The bounds of a bus.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// Events kept per watched user for resuming streams.
    pub ring: usize,
    /// Events queued for one stream; a stream that falls this far behind is
    /// ended (its client resumes from the ring) rather than buffered.
    pub stream_queue: usize,
    /// Streams one user may hold at once on one instance.
    pub per_user_streams: usize,
    /// Streams one instance holds at once.
    pub max_streams: usize,
    /// How long a user's ring outlives their last stream.
    pub retain: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            ring: 64,
            stream_queue: 256,
            per_user_streams: 8,
            max_streams: 10_000,
            retain: Duration::from_secs(120),
        }
    }
}

/// One event of a user's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusEvent {
    /// `epoch.n`: `n` increases by one per event of the user; the epoch
    /// changes when the user's ring is made anew, so that an id from before
    /// is never mistaken for one of the new ring.
    pub id: EventId,
    /// The event's payload (JSON, for the streams).
    pub data: Arc<str>,
}

/// An event's id, as `epoch.n`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    pub epoch: u64,
    pub n: u64,
}

impl EventId {
    /// Reads `epoch.n` (a `Last-Event-ID`); `None` for anything else.
    pub fn parse(text: &str) -> Option<EventId> {
        let (epoch, n) = text.trim().split_once('.')?;
        Some(EventId {
            epoch: epoch.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.n)
    }
}

/// A quote event: `data` announces the new price of `symbol`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteEvent {
    pub symbol: Arc<str>,
    pub data: Arc<str>,
}

/// What a new stream starts with, given the id it last saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// No id was given: start from now.
    Fresh,
    /// The events after the given id, all of them (maybe none).
    Replay(Vec<BusEvent>),
    /// The id is too old (or unknown): events were missed that the ring no
    /// longer holds, and the client must read the state afresh.
    Gap,
}

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("this user holds {0} event streams on this instance already, the most allowed")]
    UserLimit(usize),
    #[error("this instance holds {0} event streams already, the most allowed")]
    ServerLimit(usize),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// A stream's subscription: its user's events, and every quote event (the
/// stream picks the symbols it cares for). Dropping it unsubscribes.
pub struct Subscription {
    pub resume: Resume,
    /// Ends when the stream fell [`BusConfig::stream_queue`] events behind
    /// and was dropped, or when the bus stops.
    pub events: mpsc::Receiver<BusEvent>,
    pub quotes: broadcast::Receiver<QuoteEvent>,
    pub registration: Registration,
    /// Embedded: the ring's watch, released with the stream.
    _watching: Option<Watching>,
}

/// The bus. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    local: Arc<Local>,
    backend: Backend,
}

enum Backend {
    Memory(Arc<MemoryRings>),
    Redis(redis_bus::RedisBus),
}

/// Quote events queue up to this many per stream; one that falls further
/// behind skips to the newest (prices are latest values).
const QUOTE_BACKLOG: usize = 256;

impl EventBus {
    /// The bus over `cache`: in memory for an in-memory cache, over Redis
    /// for a Redis one (starting its subscriber task).
    pub fn new(cache: &Cache, config: BusConfig) -> EventBus {
        let local = Arc::new(Local::new(config, QUOTE_BACKLOG));
        let backend = match cache {
            Cache::Memory(_) => Backend::Memory(Arc::new(MemoryRings::new(config))),
            Cache::Redis(redis) => {
                Backend::Redis(redis_bus::RedisBus::start(redis, config, local.clone()))
            }
        };
        EventBus {
            inner: Arc::new(Inner { local, backend }),
        }
    }

    /// Publishes `data` to `user`'s streams, wherever they are held.
    pub fn publish(&self, user: &str, data: String) {
        match &self.inner.backend {
            Backend::Memory(rings) => {
                if let Some(event) = rings.append(user, data.into()) {
                    self.inner.local.deliver(user, &event);
                }
            }
            Backend::Redis(redis) => redis.publish(user, data),
        }
    }

    /// Publishes `data`, the new price of `symbol`, to every stream.
    pub fn publish_quote(&self, symbol: &str, data: String) {
        let event = QuoteEvent {
            symbol: symbol.into(),
            data: data.into(),
        };
        match &self.inner.backend {
            Backend::Memory(_) => self.inner.local.deliver_quote(event),
            Backend::Redis(redis) => redis.publish_quote(event),
        }
    }

    /// Opens a stream for `user`, resuming after `last_seen` when given.
    pub async fn subscribe(
        &self,
        user: &str,
        last_seen: Option<EventId>,
    ) -> Result<Subscription, BusError> {
        // Registered before the ring is read, so that nothing published in
        // between is missed; what arrives twice is skipped by id.
        let (registration, events, quotes) = self.inner.local.register(user)?;
        let (resume, watching) = match &self.inner.backend {
            Backend::Memory(rings) => {
                let (resume, watching) = rings.watch(user, last_seen);
                (resume, Some(watching))
            }
            // Redis keeps the user watched while the registration lasts.
            Backend::Redis(redis) => (redis.watch(user, last_seen).await?, None),
        };
        Ok(Subscription {
            resume,
            events,
            quotes,
            registration,
            _watching: watching,
        })
    }

    /// Streams held on this instance now.
    pub fn streams(&self) -> usize {
        self.inner.local.total()
    }
}

/// What a ring answers for a stream resuming after `last_seen`, given the
/// events it holds (oldest first) and the id of its newest event.
fn resume_from(held: &[BusEvent], newest: EventId, last_seen: Option<EventId>) -> Resume {
    let Some(last) = last_seen else {
        return Resume::Fresh;
    };
    if last.epoch != newest.epoch || last.n > newest.n {
        return Resume::Gap;
    }
    // The oldest event the client needs is `last.n + 1`; it must be held
    // (or there must be nothing newer).
    let oldest_held = held.first().map_or(newest.n + 1, |event| event.id.n);
    if last.n + 1 < oldest_held {
        return Resume::Gap;
    }
    Resume::Replay(
        held.iter()
            .filter(|event| event.id.n > last.n)
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(epoch: u64, n: u64) -> BusEvent {
        BusEvent {
            id: EventId { epoch, n },
            data: format!("{n}").into(),
        }
    }

    fn small() -> BusConfig {
        BusConfig {
            ring: 3,
            stream_queue: 2,
            per_user_streams: 2,
            max_streams: 3,
            retain: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn the_embedded_bus_delivers_keeps_and_bounds() {
        let bus = EventBus::new(&Cache::memory("t:"), small());
        // Nobody watches: dropped, not kept.
        bus.publish("ann", "lost".into());
        let mut first = bus.subscribe("ann", None).await.unwrap();
        assert_eq!(first.resume, Resume::Fresh);
        bus.publish("ann", "one".into());
        bus.publish("bob", "not ann's".into());
        let one = first.events.recv().await.unwrap();
        assert_eq!(&*one.data, "one");
        assert!(first.events.try_recv().is_err(), "only ann's events");

        // Bounds: two per user, three per instance.
        let second = bus.subscribe("ann", None).await.unwrap();
        assert!(matches!(
            bus.subscribe("ann", None).await,
            Err(BusError::UserLimit(2))
        ));
        let _bob = bus.subscribe("bob", None).await.unwrap();
        assert!(matches!(
            bus.subscribe("cy", None).await,
            Err(BusError::ServerLimit(3))
        ));
        assert_eq!(bus.streams(), 3);
        drop(second);
        assert_eq!(bus.streams(), 2);

        // A stream that does not read is dropped once its queue is full;
        // its events stay in the ring for it to resume from.
        for text in ["two", "three", "four"] {
            bus.publish("ann", text.into());
        }
        let mut queued = Vec::new();
        while let Some(event) = first.events.recv().await {
            queued.push(event);
        }
        assert_eq!(queued.len(), 2, "the queue held two, then the stream ended");
        drop(first);
        let resumed = bus.subscribe("ann", Some(one.id)).await.unwrap();
        let Resume::Replay(missed) = resumed.resume else {
            panic!("the ring still holds what was missed");
        };
        let texts: Vec<&str> = missed.iter().map(|event| &*event.data).collect();
        assert_eq!(texts, ["two", "three", "four"]);
        // Older than the ring of three: a gap.
        let gap = bus.subscribe("ann", Some(EventId { n: 0, ..one.id })).await;
        assert_eq!(gap.unwrap().resume, Resume::Gap);
    }

    #[tokio::test]
    async fn quote_events_reach_every_stream() {
        let bus = EventBus::new(&Cache::memory("t:"), small());
        let mut ann = bus.subscribe("ann", None).await.unwrap();
        let mut bob = bus.subscribe("bob", None).await.unwrap();
        bus.publish_quote("ABC", "price".into());
        for stream in [&mut ann, &mut bob] {
            let quote = stream.quotes.recv().await.unwrap();
            assert_eq!((&*quote.symbol, &*quote.data), ("ABC", "price"));
        }
    }

    #[test]
    fn ids_read_back_as_written() {
        let id = EventId { epoch: 17, n: 4 };
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
        for bad in ["", "1", "a.b", "1.", ".2", "1.2.3", "-1.2"] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn resumes_only_when_the_ring_holds_everything_missed() {
        let held = [event(5, 3), event(5, 4), event(5, 5)];
        let newest = EventId { epoch: 5, n: 5 };
        let at = |n| Some(EventId { epoch: 5, n });
        assert_eq!(resume_from(&held, newest, None), Resume::Fresh);
        assert_eq!(
            resume_from(&held, newest, at(3)),
            Resume::Replay(vec![event(5, 4), event(5, 5)])
        );
        assert_eq!(
            resume_from(&held, newest, at(2)),
            Resume::Replay(held.to_vec())
        );
        assert_eq!(resume_from(&held, newest, at(5)), Resume::Replay(vec![]));
        assert_eq!(resume_from(&held, newest, at(1)), Resume::Gap);
        assert_eq!(resume_from(&held, newest, at(6)), Resume::Gap);
        let other_epoch = Some(EventId { epoch: 4, n: 4 });
        assert_eq!(resume_from(&held, newest, other_epoch), Resume::Gap);
        let empty_newest = EventId { epoch: 5, n: 0 };
        assert_eq!(
            resume_from(&[], empty_newest, at(0)),
            Resume::Replay(vec![])
        );
    }
}
