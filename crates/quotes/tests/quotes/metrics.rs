//! What the crate reports to the `metrics` recorder.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cache::Cache;
use cache::testing::PrivateRedis;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use quotes::server::QuoteServerConfig;
use quotes::{QuoteCache, QuoteError, SharedQuoteLoader};

use crate::helpers::{
    Act, RunningServer, Scripted, builtin, builtin_client, now, quick_config, symbol, tcp_client,
    user,
};

/// Counts every counter increment and histogram record, by name and labels.
#[derive(Default)]
struct Tally {
    values: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
}

/// A histogram handle that counts its records.
struct Records(Arc<AtomicU64>);

impl HistogramFn for Records {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Tally {
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        Arc::clone(lock(&self.values).entry(name).or_default())
    }

    fn get(&self, name: &str) -> u64 {
        lock(&self.values)
            .get(name)
            .map_or(0, |v| v.load(Ordering::SeqCst))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap()
}

impl Recorder for Tally {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Records(self.slot(key))))
    }
}

/// Runs `test` on a single-threaded runtime with `tally` as this thread's
/// recorder, so that tests running in parallel do not count each other.
fn with_tally(tally: &Tally, test: impl AsyncFnOnce()) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(tally, || runtime.block_on(test()));
}

#[test]
fn every_request_is_counted_and_costed() {
    let tally = Tally::default();
    with_tally(&tally, async || {
        let garbage = "N/A,ABC,jsmith,1330546050315,key==\n".to_owned();
        let server = Scripted::start(vec![now(Act::Send(garbage)), now(Act::Quote)]).await;
        let fetched = tcp_client(&server.address, quick_config())
            .fetch(symbol("ABC"), &user("jsmith"))
            .await
            .unwrap();
        assert_eq!(fetched.requests_sent, 2);
    });
    assert_eq!(tally.get("quote_requests_total"), 2);
    assert_eq!(tally.get("quote_cost_cents_total"), 10);
    assert_eq!(tally.get("quote_request_errors_total{reason=garbage}"), 1);
    assert_eq!(tally.get("quote_fetch_seconds"), 1);
}

#[test]
fn a_fetch_that_gives_up_is_counted_as_unavailable() {
    let tally = Tally::default();
    with_tally(&tally, async || {
        let server = Scripted::start(vec![now(Act::Send(String::new()))]).await;
        let error = tcp_client(&server.address, quick_config())
            .fetch(symbol("ABC"), &user("jsmith"))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            QuoteError::Unavailable {
                requests_sent: 3,
                ..
            }
        ));
    });
    assert_eq!(tally.get("quote_cost_cents_total"), 15);
    assert_eq!(tally.get("quote_request_errors_total{reason=closed}"), 3);
    assert_eq!(
        tally.get("quote_request_errors_total{reason=unavailable}"),
        1
    );
    assert_eq!(tally.get("quote_fetch_seconds"), 1);
}

#[test]
fn the_server_and_the_cache_count_what_they_do() {
    let tally = Tally::default();
    with_tally(&tally, async || {
        let server = RunningServer::start(QuoteServerConfig::default()).await;
        let cache = QuoteCache::new(
            tcp_client(&server.address, quick_config()),
            std::time::Duration::from_secs(60),
        );
        for _ in 0..3 {
            cache.get(symbol("ABC"), &user("u")).await.unwrap();
        }
        server.stop().await;
    });
    assert_eq!(tally.get("quote_server_replies_total"), 1);
    assert_eq!(tally.get("quote_cache_misses_total"), 1);
    assert_eq!(tally.get("quote_cache_hits_total"), 2);
}

#[test]
fn every_fetch_around_an_unavailable_shared_cache_is_counted() {
    let Some(redis) = PrivateRedis::not_started(
        "metrics::every_fetch_around_an_unavailable_shared_cache_is_counted",
    ) else {
        return;
    };
    let tally = Tally::default();
    let core = builtin(QuoteServerConfig::default());
    with_tally(&tally, async || {
        let loader = SharedQuoteLoader::new(
            Cache::redis(&redis.url(), "quotes:").unwrap(),
            builtin_client(&core, quick_config()),
            std::time::Duration::from_secs(60),
        );
        let cache = QuoteCache::new(loader, std::time::Duration::from_secs(60));
        for name in ["AAA", "BBB", "CCC"] {
            cache.get(symbol(name), &user("u")).await.unwrap();
        }
        // From the in-process cache: no fetch, nothing to go around.
        cache.get(symbol("AAA"), &user("u")).await.unwrap();
    });
    assert_eq!(tally.get("quote_cache_bypass_total"), 3);
    assert_eq!(core.replies_served(), 3);
}
