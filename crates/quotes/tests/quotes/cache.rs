//! The per-symbol cache: TTL, single-flight, errors, subscriptions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use engine::{Money, Symbol, UserId};
use quotes::server::{PriceMode, QuoteServerConfig};
use quotes::{
    DEFAULT_CACHE_TTL, LatencyProfile, Origin, Quote, QuoteCache, QuoteError, QuoteLoader,
    fixed_price,
};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::advance;

use crate::helpers::{builtin, builtin_client, now_ms, quick_config, symbol, user};

const TTL: Duration = Duration::from_secs(60);

fn legacy_cache(mode: PriceMode) -> (QuoteCache, Arc<quotes::server::QuoteServerCore>) {
    let core = builtin(QuoteServerConfig {
        mode,
        latency: LatencyProfile::Legacy,
        ..QuoteServerConfig::default()
    });
    // No hedging, so that one fetch is one reply served.
    let cache = QuoteCache::new(builtin_client(&core, quick_config()), TTL);
    (cache, core)
}

fn is_fetched(quote: &Quote) -> bool {
    matches!(quote.origin, Origin::Fetched(_))
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_misses_make_one_fetch() {
    let (cache, core) = legacy_cache(PriceMode::Fixed);
    let gets: Vec<_> = (0..100)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(symbol("ABC"), &user(&format!("u{i}"))).await })
        })
        .collect();
    let mut quotes = Vec::new();
    for get in gets {
        quotes.push(get.await.unwrap().unwrap());
    }
    assert_eq!(core.replies_served(), 1);
    assert!(
        quotes
            .iter()
            .all(|q| q.price == fixed_price(symbol("ABC")) && q.symbol == symbol("ABC"))
    );
    let fetched: Vec<&Quote> = quotes.iter().filter(|q| is_fetched(q)).collect();
    assert_eq!(fetched.len(), 1);
    // It went to the caller whose request caused it, with its user echoed.
    let Origin::Fetched(ref origin) = fetched[0].origin else {
        unreachable!()
    };
    assert_eq!(origin.user, "u0");
    assert_eq!(origin.requests_sent, 1);
    assert!(
        quotes
            .iter()
            .all(|q| q.fetched_at_ms == quotes[0].fetched_at_ms)
    );

    // Another symbol is fetched on its own.
    let xyz = cache.get(symbol("XYZ"), &user("u1")).await.unwrap();
    assert!(is_fetched(&xyz));
    assert_eq!(xyz.price, fixed_price(symbol("XYZ")));
    assert_eq!(core.replies_served(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_price_is_kept_for_its_ttl_then_fetched_again() {
    let (cache, core) = legacy_cache(PriceMode::Walk { seed: 4 });
    assert!(cache.peek(symbol("ABC")).is_none());
    let first = cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert!(is_fetched(&first));

    advance(TTL - Duration::from_secs(1)).await;
    let again = cache.get(symbol("ABC"), &user("v")).await.unwrap();
    assert_eq!(
        (again.origin.clone(), again.price),
        (Origin::Cached, first.price)
    );
    let peeked = cache.peek(symbol("ABC")).unwrap();
    assert_eq!(
        (peeked.origin, peeked.price, peeked.fetched_at_ms),
        (Origin::Cached, first.price, first.fetched_at_ms)
    );
    assert_eq!(core.replies_served(), 1);

    advance(Duration::from_secs(2)).await;
    assert!(
        cache.peek(symbol("ABC")).is_none(),
        "peek never serves a stale price"
    );
    let later = cache.get(symbol("ABC"), &user("v")).await.unwrap();
    assert!(is_fetched(&later));
    assert_ne!(later.price, first.price, "the walk moved");
    assert_eq!(core.replies_served(), 2);
}

#[tokio::test(start_paused = true)]
async fn peek_never_fetches() {
    let (cache, core) = legacy_cache(PriceMode::Fixed);
    assert!(cache.peek(symbol("ABC")).is_none());
    assert_eq!(core.replies_served(), 0);
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_each_fetched_price_once() {
    let (cache, _core) = legacy_cache(PriceMode::Walk { seed: 8 });
    let mut prices = cache.subscribe();
    let first = cache.get(symbol("ABC"), &user("u")).await.unwrap();
    cache.get(symbol("ABC"), &user("u")).await.unwrap();
    let other = cache.get(symbol("XYZ"), &user("u")).await.unwrap();
    advance(TTL).await;
    let refreshed = cache.get(symbol("ABC"), &user("u")).await.unwrap();
    let mut seen = Vec::new();
    while let Ok(price) = prices.try_recv() {
        seen.push(price);
    }
    assert_eq!(
        seen,
        [
            (symbol("ABC"), first.price),
            (symbol("XYZ"), other.price),
            (symbol("ABC"), refreshed.price)
        ]
    );
    assert_eq!(prices.try_recv(), Err(TryRecvError::Empty));
}

/// A loader scripted through the cache's seam: it takes a second, and its
/// first `failures` loads fail.
struct Flaky {
    loads: Arc<AtomicU32>,
    failures: u32,
}

impl QuoteLoader for Flaky {
    async fn load(&self, symbol: Symbol, _user: &UserId) -> Result<Quote, QuoteError> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if n < self.failures {
            return Err(QuoteError::Timeout(Duration::from_secs(1)));
        }
        Ok(Quote {
            symbol,
            price: Money::from_cents(100 + i64::from(n)),
            fetched_at_ms: now_ms(),
            origin: Origin::Cached,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn errors_wake_every_waiter_and_are_not_cached() {
    let loads = Arc::new(AtomicU32::new(0));
    let loader = Flaky {
        loads: Arc::clone(&loads),
        failures: 1,
    };
    let cache = QuoteCache::new(loader, TTL);
    let gets: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(symbol("ABC"), &user("u")).await })
        })
        .collect();
    for get in gets {
        assert!(matches!(get.await.unwrap(), Err(QuoteError::Timeout(_))));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert!(cache.peek(symbol("ABC")).is_none());

    let retried = cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(retried.price, Money::from_cents(101));
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_outlives_the_caller_that_started_it() {
    let (cache, core) = legacy_cache(PriceMode::Fixed);
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(symbol("ABC"), &user("leader")).await })
    };
    tokio::task::yield_now().await;
    let follower = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(symbol("ABC"), &user("follower")).await })
    };
    tokio::task::yield_now().await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // The fetch carried on, and its record went to the caller still waiting.
    let quote = follower.await.unwrap().unwrap();
    let Origin::Fetched(fetched) = quote.origin else {
        panic!("the orphaned fetch was not handed on: {quote:?}")
    };
    assert_eq!(fetched.user, "leader");
    assert_eq!(core.replies_served(), 1);
    assert!(cache.peek(symbol("ABC")).is_some());
}

struct Panicking;

impl QuoteLoader for Panicking {
    async fn load(&self, _symbol: Symbol, _user: &UserId) -> Result<Quote, QuoteError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        panic!("a loader bug");
    }
}

#[tokio::test(start_paused = true)]
async fn a_load_that_dies_cancels_its_waiters_instead_of_hanging_them() {
    let cache = QuoteCache::new(Panicking, TTL);
    let gets: Vec<_> = (0..3)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(symbol("ABC"), &user("u")).await })
        })
        .collect();
    for get in gets {
        assert!(matches!(get.await.unwrap(), Err(QuoteError::Cancelled)));
    }
    // The slot was freed: the next call tries again (and fails again).
    assert!(matches!(
        cache.get(symbol("ABC"), &user("u")).await,
        Err(QuoteError::Cancelled)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_failed_fetch_through_the_client_is_reported_and_retried_later() {
    let core = builtin(QuoteServerConfig {
        fault_rate: 1.0,
        ..QuoteServerConfig::default()
    });
    let cache = QuoteCache::new(builtin_client(&core, quick_config()), DEFAULT_CACHE_TTL);
    for _ in 0..2 {
        assert!(matches!(
            cache.get(symbol("ABC"), &user("u")).await,
            Err(QuoteError::Unavailable {
                requests_sent: 3,
                ..
            })
        ));
    }
}

/// A loader standing for the cache shared with other instances: its
/// prices were fetched `age` ago, by someone else.
struct FetchedElsewhere {
    age: Duration,
    loads: Arc<AtomicU32>,
}

impl FetchedElsewhere {
    fn new(age: Duration) -> (FetchedElsewhere, Arc<AtomicU32>) {
        let loads = Arc::new(AtomicU32::new(0));
        let loader = FetchedElsewhere {
            age,
            loads: Arc::clone(&loads),
        };
        (loader, loads)
    }
}

impl QuoteLoader for FetchedElsewhere {
    async fn load(&self, symbol: Symbol, _user: &UserId) -> Result<Quote, QuoteError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(Quote {
            symbol,
            price: Money::from_cents(5817),
            fetched_at_ms: now_ms() - i64::try_from(self.age.as_millis()).unwrap(),
            origin: Origin::Cached,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_price_fetched_elsewhere_lives_here_only_for_the_rest_of_its_ttl() {
    let (loader, loads) = FetchedElsewhere::new(Duration::from_secs(50));
    let cache = QuoteCache::new(loader, TTL);
    let quote = cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(quote.origin, Origin::Cached);

    // 10 s were left of its 60: not another 60.
    advance(Duration::from_secs(9)).await;
    assert!(cache.peek(symbol("ABC")).is_some());
    cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    advance(Duration::from_secs(2)).await;
    assert!(cache.peek(symbol("ABC")).is_none());
    cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_price_whose_life_is_over_is_answered_but_not_kept() {
    let (loader, loads) = FetchedElsewhere::new(TTL + Duration::from_secs(1));
    let cache = QuoteCache::new(loader, TTL);
    let quote = cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(quote.price, Money::from_cents(5817));
    assert!(cache.peek(symbol("ABC")).is_none());
    cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn prices_fetched_elsewhere_are_not_announced_here() {
    let (loader, _loads) = FetchedElsewhere::new(Duration::from_secs(1));
    let cache = QuoteCache::new(loader, TTL);
    let mut prices = cache.subscribe();
    cache.get(symbol("ABC"), &user("u")).await.unwrap();
    assert_eq!(prices.try_recv(), Err(TryRecvError::Empty));
}
