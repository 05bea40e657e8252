//! The quote cache shared between instances: two `QuoteCache`s, each with
//! its own `SharedQuoteLoader` and its own connection to one Redis (under a
//! prefix of the test's own), stand for two instances of a cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::testing::{PrivateRedis, shared_redis, unique_prefix};
use cache::{Cache, CacheStatus};
use engine::Symbol;
use quotes::server::{QuoteServerConfig, QuoteServerCore};
use quotes::{
    DEFAULT_CACHE_TTL, LatencyProfile, Origin, Quote, QuoteCache, QuoteClient, QuoteError,
    SharedQuoteLoader, fixed_price,
};
use tokio::sync::broadcast;

use crate::helpers::{
    Act, Scripted, after, builtin, builtin_client, now, now_ms, quick_config, symbol, tcp_client,
    user,
};

type Instance = QuoteCache<SharedQuoteLoader>;

fn instance(cache: Cache, client: QuoteClient, ttl: Duration) -> Instance {
    QuoteCache::new(SharedQuoteLoader::new(cache, client, ttl), ttl)
}

/// Two instances over `caches`, fetching from `core` without hedging, so
/// that one fetch is one reply served.
fn instances(caches: &[Cache], core: &Arc<QuoteServerCore>, ttl: Duration) -> Vec<Instance> {
    caches
        .iter()
        .map(|cache| instance(cache.clone(), builtin_client(core, quick_config()), ttl))
        .collect()
}

fn is_fetched(quote: &Quote) -> bool {
    matches!(quote.origin, Origin::Fetched(_))
}

/// Twenty symbols, `A` to `T`.
fn twenty_symbols() -> Vec<Symbol> {
    ('A'..='T').map(|c| symbol(&c.to_string())).collect()
}

/// 40 concurrent gets on each instance over `symbols`, each by its own
/// user; checks that the cluster fetched each symbol exactly once, for
/// exactly one caller, and that everyone got that one price.
async fn forty_gets_per_instance(instances: &[Instance], core: &QuoteServerCore) {
    let symbols = twenty_symbols();
    let mut gets = Vec::new();
    for (n, instance) in instances.iter().enumerate() {
        for i in 0..40 {
            let instance = instance.clone();
            let symbol = symbols[i % symbols.len()];
            gets.push(tokio::spawn(async move {
                instance.get(symbol, &user(&format!("i{n}u{i}"))).await
            }));
        }
    }
    let mut quotes: HashMap<Symbol, Vec<Quote>> = HashMap::new();
    for get in gets {
        let quote = get.await.unwrap().unwrap();
        quotes.entry(quote.symbol).or_default().push(quote);
    }
    assert_eq!(core.replies_served(), 20, "one fetch per symbol in all");
    let fetched = quotes.values().flatten().filter(|q| is_fetched(q)).count();
    assert_eq!(fetched, 20, "one caller per fetch is told it fetched");
    for symbol in symbols {
        let quotes = &quotes[&symbol];
        assert_eq!(quotes.len(), 4);
        assert_eq!(
            quotes.iter().filter(|q| is_fetched(q)).count(),
            1,
            "{symbol}"
        );
        assert!(quotes.iter().all(|q| q.price == fixed_price(symbol)));
        assert!(
            quotes
                .iter()
                .all(|q| q.fetched_at_ms == quotes[0].fetched_at_ms),
            "{symbol}: everyone got the one fetch"
        );
    }
}

/// Every price announced so far.
fn announced(prices: &mut broadcast::Receiver<(Symbol, engine::Money)>) -> Vec<Symbol> {
    let mut symbols = Vec::new();
    while let Ok((symbol, _)) = prices.try_recv() {
        symbols.push(symbol);
    }
    symbols
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_fetch_each_symbol_once_between_them() {
    let Some(url) = shared_redis("shared::two_instances_fetch_each_symbol_once_between_them")
    else {
        return;
    };
    let prefix = unique_prefix("two_instances");
    // Slow, as the legacy service was: the other instance is still waiting
    // on the lock when the fetch lands.
    let core = builtin(QuoteServerConfig {
        latency: LatencyProfile::Legacy,
        ..QuoteServerConfig::default()
    });
    let caches = [
        Cache::redis(&url, &prefix).unwrap(),
        Cache::redis(&url, &prefix).unwrap(),
    ];
    let instances = instances(&caches, &core, DEFAULT_CACHE_TTL);
    let mut prices: Vec<_> = instances.iter().map(QuoteCache::subscribe).collect();

    forty_gets_per_instance(&instances, &core).await;

    // Each price was announced once, by the instance that fetched it.
    let mut all: Vec<Symbol> = prices.iter_mut().flat_map(announced).collect();
    all.sort_unstable();
    assert_eq!(all, twenty_symbols());
}

/// The same over the in-process cache of embedded mode, where the same
/// loader works (and whose clock can be paused, so the slow quote service
/// costs no time).
#[tokio::test(start_paused = true)]
async fn the_loader_keeps_its_promise_over_the_in_memory_cache() {
    let core = builtin(QuoteServerConfig {
        latency: LatencyProfile::Legacy,
        ..QuoteServerConfig::default()
    });
    let memory = Cache::memory("quotes:");
    let instances = instances(&[memory.clone(), memory], &core, DEFAULT_CACHE_TTL);
    forty_gets_per_instance(&instances, &core).await;
}

/// Sleeps until the wall clock reads `unix_ms`.
async fn sleep_until_wall_clock(unix_ms: i64) {
    if let Ok(ms) = u64::try_from(unix_ms - now_ms()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_from_the_shared_cache_expires_with_the_shared_price() {
    let Some(url) =
        shared_redis("shared::a_copy_from_the_shared_cache_expires_with_the_shared_price")
    else {
        return;
    };
    let prefix = unique_prefix("expiry");
    let ttl = Duration::from_secs(3);
    let core = builtin(QuoteServerConfig::default());
    let caches = [
        Cache::redis(&url, &prefix).unwrap(),
        Cache::redis(&url, &prefix).unwrap(),
    ];
    let instances = instances(&caches, &core, ttl);
    let (a, b) = (&instances[0], &instances[1]);
    let abc = symbol("ABC");

    let first = a.get(abc, &user("a")).await.unwrap();
    assert!(is_fetched(&first));
    sleep_until_wall_clock(first.fetched_at_ms + 1000).await;
    let second = b.get(abc, &user("b")).await.unwrap();
    assert_eq!(second.origin, Origin::Cached);
    assert_eq!(second.fetched_at_ms, first.fetched_at_ms);
    assert!(b.peek(abc).is_some());

    // Past the price's 3 s, but not 3 s after B copied it.
    sleep_until_wall_clock(first.fetched_at_ms + 3500).await;
    assert!(
        b.peek(abc).is_none(),
        "B's copy outlived the price it copied"
    );
    assert!(a.peek(abc).is_none());
    let third = b.get(abc, &user("b")).await.unwrap();
    assert!(is_fetched(&third), "the shared price expired too");
    assert_eq!(core.replies_served(), 2);
}

/// Gets `symbol` on each instance in turn; their origins.
async fn origins(instances: &[Instance], symbol: Symbol) -> Vec<Origin> {
    let mut origins = Vec::new();
    for (n, instance) in instances.iter().enumerate() {
        let quote = instance.get(symbol, &user(&format!("i{n}"))).await.unwrap();
        assert_eq!(quote.price, fixed_price(symbol));
        origins.push(quote.origin);
    }
    origins
}

fn fetched_then_cached(origins: &[Origin]) -> bool {
    matches!(origins, [Origin::Fetched(_), Origin::Cached])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_instance_fetches_for_itself_until_it_is_back() {
    let Some(mut redis) = PrivateRedis::start(
        "shared::without_redis_each_instance_fetches_for_itself_until_it_is_back",
    ) else {
        return;
    };
    let core = builtin(QuoteServerConfig::default());
    let caches = [
        Cache::redis(&redis.url(), "quotes:").unwrap(),
        Cache::redis(&redis.url(), "quotes:").unwrap(),
    ];
    let instances = instances(&caches, &core, DEFAULT_CACHE_TTL);

    let shared = origins(&instances, symbol("AAA")).await;
    assert!(fetched_then_cached(&shared), "{shared:?}");
    assert_eq!(core.replies_served(), 1);

    redis.kill();
    let bypassed = origins(&instances, symbol("BBB")).await;
    assert!(
        bypassed
            .iter()
            .all(|origin| matches!(origin, Origin::Fetched(_))),
        "each instance fetched for itself: {bypassed:?}"
    );
    assert_eq!(core.replies_served(), 3);

    redis.restart();
    let started = Instant::now();
    while caches.iter().any(|cache| cache.status() != CacheStatus::Up) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "Redis is back but the caches are not"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shared_again = origins(&instances, symbol("CCC")).await;
    assert!(fetched_then_cached(&shared_again), "{shared_again:?}");
    assert_eq!(core.replies_served(), 4);
}

fn garbage() -> Act {
    Act::Send("N/A,ABC,a,1330546050315,key==\n".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_from_the_quote_service_is_cached_nowhere() {
    let Some(url) = shared_redis("shared::an_error_from_the_quote_service_is_cached_nowhere")
    else {
        return;
    };
    let prefix = unique_prefix("errors");
    // One failed fetch (three attempts), then good replies.
    let server = Scripted::start(vec![
        now(garbage()),
        now(garbage()),
        now(garbage()),
        now(Act::Quote),
    ])
    .await;
    let shared = Cache::redis(&url, &prefix).unwrap();
    let a = instance(
        shared.clone(),
        tcp_client(&server.address, quick_config()),
        DEFAULT_CACHE_TTL,
    );
    let abc = symbol("ABC");

    let error = a.get(abc, &user("a")).await.unwrap_err();
    assert!(
        matches!(error, QuoteError::Unavailable { attempts: 3, .. }),
        "{error}"
    );
    assert!(a.peek(abc).is_none());
    assert_eq!(shared.get("quote:ABC").await, Ok(None));
    assert_eq!(
        shared.get("quote-lock:ABC").await,
        Ok(None),
        "the lock was released, not left to expire"
    );

    let quote = a.get(abc, &user("a")).await.unwrap();
    assert!(is_fetched(&quote));
    assert!(shared.get("quote:ABC").await.unwrap().is_some());
    assert_eq!(server.connections(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_fetching_instance_fails_a_waiting_one_fetches() {
    let Some(url) = shared_redis("shared::when_the_fetching_instance_fails_a_waiting_one_fetches")
    else {
        return;
    };
    let prefix = unique_prefix("handover");
    // The first fetch fails slowly (three attempts, 200 ms each), so the
    // other instance is surely waiting on its lock; the next one succeeds.
    let server = Scripted::start(vec![
        after(200, garbage()),
        after(200, garbage()),
        after(200, garbage()),
        now(Act::Quote),
    ])
    .await;
    let instances: Vec<Instance> = (0..2)
        .map(|_| {
            instance(
                Cache::redis(&url, &prefix).unwrap(),
                tcp_client(&server.address, quick_config()),
                DEFAULT_CACHE_TTL,
            )
        })
        .collect();
    let abc = symbol("ABC");
    let gets: Vec<_> = instances
        .iter()
        .enumerate()
        .map(|(n, instance)| {
            let instance = instance.clone();
            tokio::spawn(async move { instance.get(abc, &user(&format!("i{n}"))).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for get in gets {
        outcomes.push(get.await.unwrap());
    }
    let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
    let fetched = outcomes
        .iter()
        .filter(|outcome| outcome.as_ref().is_ok_and(is_fetched))
        .count();
    assert_eq!((failed, fetched), (1, 1), "{outcomes:?}");
    assert_eq!(server.connections(), 4);

    // The instance whose fetch failed now reads the other's price.
    for instance in &instances {
        let quote = instance.get(abc, &user("later")).await.unwrap();
        assert_eq!(quote.origin, Origin::Cached);
    }
    assert_eq!(server.connections(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_of_an_instance_that_died_expires_and_another_fetches() {
    let Some(url) =
        shared_redis("shared::the_lock_of_an_instance_that_died_expires_and_another_fetches")
    else {
        return;
    };
    let prefix = unique_prefix("dead_holder");
    let shared = Cache::redis(&url, &prefix).unwrap();
    assert!(
        shared
            .set_nx(
                "quote-lock:ABC",
                b"an instance that died",
                Duration::from_millis(300)
            )
            .await
            .unwrap()
    );
    let core = builtin(QuoteServerConfig::default());
    let a = instance(
        shared,
        builtin_client(&core, quick_config()),
        DEFAULT_CACHE_TTL,
    );
    let quote = a.get(symbol("ABC"), &user("a")).await.unwrap();
    assert!(is_fetched(&quote));
    assert_eq!(core.replies_served(), 1);
}
