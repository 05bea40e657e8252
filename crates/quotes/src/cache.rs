//! The per-symbol price cache, with single-flight: however many commands
//! miss on a symbol at once, one fetch goes to the quote service.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{Money, Symbol, UserId};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::clock::{remaining_life, wall_clock_ms};
use crate::{Fetched, QuoteClient, QuoteError, lock};

/// A price, and whether this caller's request fetched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    pub symbol: Symbol,
    pub price: Money,
    /// When the price was fetched (wall clock, Unix ms).
    pub fetched_at_ms: i64,
    pub origin: Origin,
}

/// Where a caller's price came from: it decides the audit-log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// This caller's request fetched it from the quote service: its command
    /// records the `quoteServer` entry. Exactly one caller per fetch gets it.
    Fetched(Fetched),
    /// From the cache, or from a fetch someone else started.
    Cached,
}

/// Where a cache miss goes: straight to the quote client, or, in a
/// cluster, to the cache the instances share ([`crate::SharedQuoteLoader`]),
/// which answers with [`Origin::Cached`] when another instance has already
/// paid for the price.
pub trait QuoteLoader: Send + Sync + 'static {
    fn load(
        &self,
        symbol: Symbol,
        user: &UserId,
    ) -> impl Future<Output = Result<Quote, QuoteError>> + Send;
}

impl QuoteLoader for QuoteClient {
    async fn load(&self, symbol: Symbol, user: &UserId) -> Result<Quote, QuoteError> {
        let fetched = self.fetch(symbol, user).await?;
        Ok(Quote {
            symbol,
            price: fetched.price,
            fetched_at_ms: wall_clock_ms(),
            origin: Origin::Fetched(fetched),
        })
    }
}

/// Per-symbol prices, each kept for a time to live.
///
/// A miss starts one load on its own task, so a caller that gives up
/// (a client hanging up mid-command) does not cancel a fetch others wait for
/// and that is already paid for. Errors are not cached: the next call tries
/// again. Cheap to clone; clones share the cache.
pub struct QuoteCache<L: QuoteLoader = QuoteClient> {
    inner: Arc<Inner<L>>,
}

impl<L: QuoteLoader> Clone for QuoteCache<L> {
    fn clone(&self) -> Self {
        QuoteCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<L> {
    loader: L,
    ttl: Duration,
    slots: Mutex<HashMap<Symbol, Slot>>,
    prices: broadcast::Sender<(Symbol, Money)>,
}

enum Slot {
    Ready {
        price: Money,
        fetched_at_ms: i64,
        expires_at: Instant,
    },
    Loading(Arc<Flight>),
}

/// One load in progress, shared by everyone waiting for it.
struct Flight {
    /// `None` until the load ends; then its outcome, as seen by the waiters.
    outcome: watch::Sender<Option<Result<Quote, QuoteError>>>,
    /// The fetch, if the caller that started it went away before it ended:
    /// the first waiter claims it, so that some command still records it.
    unclaimed: Mutex<Option<Fetched>>,
}

enum Miss {
    Lead(Arc<Flight>),
    Follow(
        Arc<Flight>,
        watch::Receiver<Option<Result<Quote, QuoteError>>>,
    ),
}

/// Fresh prices queue up to this many per subscriber; one that falls further
/// behind gets `RecvError::Lagged` and should re-check what it watches.
const SUBSCRIBER_BACKLOG: usize = 1024;

/// How long a price stays fresh, as specified: 60 s.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

impl<L: QuoteLoader> QuoteCache<L> {
    pub fn new(loader: L, ttl: Duration) -> QuoteCache<L> {
        QuoteCache {
            inner: Arc::new(Inner {
                loader,
                ttl,
                slots: Mutex::new(HashMap::new()),
                prices: broadcast::channel(SUBSCRIBER_BACKLOG).0,
            }),
        }
    }

    /// The price of `symbol`: cached if fresh, otherwise loaded on behalf of
    /// `user` (or awaited, if a load is already in flight).
    pub async fn get(&self, symbol: Symbol, user: &UserId) -> Result<Quote, QuoteError> {
        let miss = {
            let mut slots = lock(&self.inner.slots);
            match slots.get(&symbol) {
                Some(Slot::Ready {
                    price,
                    fetched_at_ms,
                    expires_at,
                }) if Instant::now() < *expires_at => {
                    metrics::counter!("quote_cache_hits_total").increment(1);
                    return Ok(cached(symbol, *price, *fetched_at_ms));
                }
                Some(Slot::Loading(flight)) => {
                    Miss::Follow(Arc::clone(flight), flight.outcome.subscribe())
                }
                _ => {
                    let flight = Arc::new(Flight {
                        outcome: watch::Sender::new(None),
                        unclaimed: Mutex::new(None),
                    });
                    slots.insert(symbol, Slot::Loading(Arc::clone(&flight)));
                    Miss::Lead(flight)
                }
            }
        };
        // Callers that waited on someone else's load count as misses too:
        // they did not get their price at once.
        metrics::counter!("quote_cache_misses_total").increment(1);
        match miss {
            Miss::Lead(flight) => {
                let (leader, outcome) = oneshot::channel();
                // In the caller's span: what the fetch logs is logged
                // under the request (or the job) that caused it.
                tokio::spawn(
                    load(
                        Arc::clone(&self.inner),
                        symbol,
                        user.clone(),
                        flight,
                        leader,
                    )
                    .in_current_span(),
                );
                outcome.await.unwrap_or(Err(QuoteError::Cancelled))
            }
            Miss::Follow(flight, mut outcome) => {
                let result = match outcome.wait_for(Option::is_some).await {
                    Ok(done) => done.clone().unwrap_or(Err(QuoteError::Cancelled)),
                    Err(_) => Err(QuoteError::Cancelled),
                };
                let mut quote = result?;
                if let Some(fetched) = lock(&flight.unclaimed).take() {
                    quote.origin = Origin::Fetched(fetched);
                }
                Ok(quote)
            }
        }
    }

    /// The cached price of `symbol` if it is still fresh; never fetches.
    pub fn peek(&self, symbol: Symbol) -> Option<Quote> {
        match lock(&self.inner.slots).get(&symbol) {
            Some(Slot::Ready {
                price,
                fetched_at_ms,
                expires_at,
            }) if Instant::now() < *expires_at => Some(cached(symbol, *price, *fetched_at_ms)),
            _ => None,
        }
    }

    /// Every price this cache fetches from the quote service from now on,
    /// once each, as it becomes known: the trigger engine fires triggers
    /// from it. Prices read from a cache shared with other instances are
    /// not announced again here.
    pub fn subscribe(&self) -> broadcast::Receiver<(Symbol, Money)> {
        self.inner.prices.subscribe()
    }
}

fn cached(symbol: Symbol, price: Money, fetched_at_ms: i64) -> Quote {
    Quote {
        symbol,
        price,
        fetched_at_ms,
        origin: Origin::Cached,
    }
}

/// The task behind one flight: loads, then lands the outcome.
async fn load<L: QuoteLoader>(
    inner: Arc<Inner<L>>,
    symbol: Symbol,
    user: UserId,
    flight: Arc<Flight>,
    leader: oneshot::Sender<Result<Quote, QuoteError>>,
) {
    let mut landing = Landing {
        inner: &inner,
        symbol,
        flight: &flight,
        leader: Some(leader),
    };
    let outcome = inner.loader.load(symbol, &user).await;
    landing.land(outcome);
}

/// Lands a flight exactly once: with the load's outcome, or — if the task
/// is dropped first (runtime shutdown, a panicking loader) — with
/// [`QuoteError::Cancelled`], so that no waiter waits forever and the next
/// call can try again.
struct Landing<'a, L> {
    inner: &'a Inner<L>,
    symbol: Symbol,
    flight: &'a Flight,
    /// Taken when landed.
    leader: Option<oneshot::Sender<Result<Quote, QuoteError>>>,
}

impl<L> Landing<'_, L> {
    fn land(&mut self, outcome: Result<Quote, QuoteError>) {
        let Some(leader) = self.leader.take() else {
            return;
        };
        {
            let mut slots = lock(&self.inner.slots);
            let ours = matches!(slots.get(&self.symbol), Some(Slot::Loading(f)) if std::ptr::eq(Arc::as_ptr(f), self.flight));
            if ours {
                // A price is fresh for the TTL from when it was fetched (it
                // arrived, not when it was asked for), whoever fetched it:
                // one another instance fetched 50 s ago has 10 s left here
                // too. Errors are not kept, and neither is a price whose
                // life is already over.
                let ready = outcome.as_ref().ok().and_then(|quote| {
                    let life = remaining_life(quote.fetched_at_ms, self.inner.ttl);
                    (!life.is_zero()).then(|| Slot::Ready {
                        price: quote.price,
                        fetched_at_ms: quote.fetched_at_ms,
                        expires_at: Instant::now() + life,
                    })
                });
                match ready {
                    Some(ready) => slots.insert(self.symbol, ready),
                    None => slots.remove(&self.symbol),
                };
            }
        }
        if let Ok(Quote {
            price,
            origin: Origin::Fetched(_),
            ..
        }) = &outcome
        {
            // Only prices this instance paid for: one read from the shared
            // cache was announced by the instance that fetched it. No
            // subscribers is fine: nobody is watching prices yet.
            let _ = self.inner.prices.send((self.symbol, *price));
        }
        let for_waiters = outcome
            .clone()
            .map(|quote| cached(quote.symbol, quote.price, quote.fetched_at_ms));
        if let Err(Ok(Quote {
            origin: Origin::Fetched(fetched),
            ..
        })) = leader.send(outcome)
        {
            // Before the waiters wake, so the first of them finds it.
            *lock(&self.flight.unclaimed) = Some(fetched);
        }
        self.flight.outcome.send_replace(Some(for_waiters));
    }
}

impl<L> Drop for Landing<'_, L> {
    fn drop(&mut self) {
        self.land(Err(QuoteError::Cancelled));
    }
}
