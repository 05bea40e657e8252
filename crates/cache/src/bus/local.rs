//! The streams this instance holds, and (embedded) the users' rings.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};

use super::{BusConfig, BusError, BusEvent, EventId, QuoteEvent, Resume, resume_from};

/// The streams held here, by user, each with its bounded queue.
pub(crate) struct Local {
    config: BusConfig,
    streams: Mutex<Streams>,
    quotes: broadcast::Sender<QuoteEvent>,
}

#[derive(Default)]
struct Streams {
    by_user: HashMap<String, Vec<(u64, mpsc::Sender<BusEvent>)>>,
    total: usize,
    next_id: u64,
}

/// A stream's place among those held here; dropping it frees the place.
pub struct Registration {
    local: Arc<Local>,
    user: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = lock(&self.local.streams);
        let Streams { by_user, total, .. } = &mut *streams;
        if let Some(held) = by_user.get_mut(&self.user) {
            let before = held.len();
            held.retain(|(id, _)| *id != self.id);
            // A stream dropped for being slow has left already.
            *total -= before - held.len();
            if held.is_empty() {
                by_user.remove(&self.user);
            }
        }
        metrics::gauge!("event_streams").set(*total as f64);
    }
}

type Registered = (
    Registration,
    mpsc::Receiver<BusEvent>,
    broadcast::Receiver<QuoteEvent>,
);

impl Local {
    pub(crate) fn new(config: BusConfig, quote_backlog: usize) -> Local {
        Local {
            config,
            streams: Mutex::new(Streams::default()),
            quotes: broadcast::channel(quote_backlog).0,
        }
    }

    /// Registers a new stream of `user`, within the bounds.
    pub(crate) fn register(self: &Arc<Self>, user: &str) -> Result<Registered, BusError> {
        let mut streams = lock(&self.streams);
        if streams.total >= self.config.max_streams {
            return Err(BusError::ServerLimit(self.config.max_streams));
        }
        let held = streams.by_user.get(user).map_or(0, Vec::len);
        if held >= self.config.per_user_streams {
            return Err(BusError::UserLimit(self.config.per_user_streams));
        }
        let (sender, receiver) = mpsc::channel(self.config.stream_queue.max(1));
        let id = streams.next_id;
        streams.next_id += 1;
        streams.total += 1;
        streams
            .by_user
            .entry(user.to_owned())
            .or_default()
            .push((id, sender));
        metrics::gauge!("event_streams").set(streams.total as f64);
        let registration = Registration {
            local: self.clone(),
            user: user.to_owned(),
            id,
        };
        Ok((registration, receiver, self.quotes.subscribe()))
    }

    /// Hands `event` to every stream of `user` held here. A stream whose
    /// queue is full is dropped: its receiver ends once drained, and its
    /// client reconnects and resumes from the ring.
    pub(crate) fn deliver(&self, user: &str, event: &BusEvent) {
        let mut streams = lock(&self.streams);
        let Streams { by_user, total, .. } = &mut *streams;
        let Some(held) = by_user.get_mut(user) else {
            return;
        };
        let before = held.len();
        held.retain(|(_, sender)| match sender.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("event_streams_dropped_total").increment(1);
                tracing::info!(user, "an event stream fell behind and was dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        *total -= before - held.len();
        if held.is_empty() {
            by_user.remove(user);
        }
    }

    /// Hands a quote event to every stream held here.
    pub(crate) fn deliver_quote(&self, event: QuoteEvent) {
        // No receiver is no error: nobody listens.
        let _ = self.quotes.send(event);
    }

    /// Ends every stream held here (their receivers end once drained).
    pub(crate) fn end_all(&self) {
        let mut streams = lock(&self.streams);
        streams.by_user.clear();
        streams.total = 0;
        metrics::gauge!("event_streams").set(0.0);
    }

    /// The users with a stream held here.
    pub(crate) fn users(&self) -> Vec<String> {
        lock(&self.streams).by_user.keys().cloned().collect()
    }

    pub(crate) fn total(&self) -> usize {
        lock(&self.streams).total
    }
}

/// The embedded bus's rings: one per watched user.
pub(crate) struct MemoryRings {
    config: BusConfig,
    rings: Mutex<HashMap<String, Ring>>,
}

struct Ring {
    epoch: u64,
    newest: u64,
    events: VecDeque<BusEvent>,
    /// Streams of the user open now.
    watchers: usize,
    /// When the last of them closed (or the ring was made); with none
    /// open, the ring lives [`BusConfig::retain`] past it.
    watched_at: Instant,
}

impl Ring {
    fn watched(&self, now: Instant, retain: std::time::Duration) -> bool {
        self.watchers > 0 || now.duration_since(self.watched_at) <= retain
    }
}

/// A stream's watch over its user's ring; dropping it starts the time
/// the ring is retained.
pub(crate) struct Watching {
    rings: Arc<MemoryRings>,
    user: String,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(ring) = lock(&self.rings.rings).get_mut(&self.user) {
            ring.watchers -= 1;
            ring.watched_at = Instant::now();
        }
    }
}

impl MemoryRings {
    pub(crate) fn new(config: BusConfig) -> MemoryRings {
        MemoryRings {
            config,
            rings: Mutex::new(HashMap::new()),
        }
    }

    /// Numbers `data` and keeps it in `user`'s ring, if the user is
    /// watched. `None` when nobody watches: the event is dropped.
    pub(crate) fn append(&self, user: &str, data: Arc<str>) -> Option<BusEvent> {
        let mut rings = lock(&self.rings);
        let ring = rings.get_mut(user)?;
        if !ring.watched(Instant::now(), self.config.retain) {
            rings.remove(user);
            return None;
        }
        ring.newest += 1;
        let event = BusEvent {
            id: EventId {
                epoch: ring.epoch,
                n: ring.newest,
            },
            data,
        };
        ring.events.push_back(event.clone());
        while ring.events.len() > self.config.ring {
            ring.events.pop_front();
        }
        Some(event)
    }

    /// Watches `user` (making their ring if needed) and answers what a
    /// stream resuming after `last_seen` replays. Rings no longer watched
    /// are swept on the way.
    pub(crate) fn watch(
        self: &Arc<Self>,
        user: &str,
        last_seen: Option<EventId>,
    ) -> (Resume, Watching) {
        let mut rings = lock(&self.rings);
        let now = Instant::now();
        let retain = self.config.retain;
        rings.retain(|_, ring| ring.watched(now, retain));
        let ring = rings.entry(user.to_owned()).or_insert_with(|| Ring {
            epoch: new_epoch(),
            newest: 0,
            events: VecDeque::new(),
            watchers: 0,
            watched_at: now,
        });
        ring.watchers += 1;
        let newest = EventId {
            epoch: ring.epoch,
            n: ring.newest,
        };
        let resume = resume_from(ring.events.make_contiguous(), newest, last_seen);
        let watching = Watching {
            rings: self.clone(),
            user: user.to_owned(),
        };
        (resume, watching)
    }
}

/// A new ring's epoch: the wall clock in ms, which differs from the epoch
/// of any ring the user had before (that one was unwatched for a while).
fn new_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent between statements: a panic elsewhere does
    // not make it unusable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
