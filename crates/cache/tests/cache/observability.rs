//! What an operator sees of an outage: the `cache_up` gauge, the
//! `cache_errors_total` counter, and two log lines — one when Redis goes
//! down, one when it is back — however many operations failed between.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cache::testing::{PrivateRedis, unique_prefix};
use cache::{Cache, CacheStatus};
use metrics::{
    Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Keeps every counter's total and every value each gauge was set to.
#[derive(Default)]
struct Recorded {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<GaugeValues>>>,
}

#[derive(Default)]
struct GaugeValues(Mutex<Vec<f64>>);

impl GaugeFn for GaugeValues {
    fn increment(&self, _: f64) {
        unreachable!("the cache only sets its gauge")
    }

    fn decrement(&self, _: f64) {
        unreachable!("the cache only sets its gauge")
    }

    fn set(&self, value: f64) {
        lock(&self.0).push(value);
    }
}

impl Recorded {
    fn counter(&self, name: &str) -> u64 {
        lock(&self.counters)
            .get(name)
            .map_or(0, |total| total.load(Ordering::SeqCst))
    }

    fn gauge(&self, name: &str) -> Vec<f64> {
        lock(&self.gauges)
            .get(name)
            .map_or_else(Vec::new, |values| lock(&values.0).clone())
    }
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let total = lock(&self.counters)
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Counter::from_arc(total)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let values = lock(&self.gauges)
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Gauge::from_arc(values)
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Log output, kept for the test to read.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// This test binary's logs, from the first call on. The subscriber is
    /// global rather than scoped to the test's thread: tracing caches
    /// whether anyone listens at each log statement, and a thread-scoped
    /// one would miss events whose statement other tests (with nobody
    /// listening) reached first.
    fn everything() -> &'static Logs {
        static LOGS: OnceLock<Logs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .init();
            logs
        })
    }

    /// How many lines of the cache with `prefix` say `text`.
    fn lines(&self, prefix: &str, text: &str) -> usize {
        let field = format!("prefix={prefix}");
        String::from_utf8_lossy(&lock(&self.0))
            .lines()
            .filter(|line| line.contains(&field) && line.contains(text))
            .count()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap()
}

/// Waits, through the cache's own probes only, until its status is `up`.
async fn status_becomes(cache: &Cache, up: bool) {
    let started = Instant::now();
    while (cache.status() == CacheStatus::Up) != up {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "status stuck at {:?}",
            cache.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The recorder is this thread's, so the test runs on a single-threaded
/// runtime (the cache's background task included) and counts nothing of
/// the tests running beside it; its log lines are told apart by the cache's
/// prefix.
#[test]
fn an_outage_is_one_gauge_dip_counted_errors_and_two_log_lines() {
    let Some(mut redis) = PrivateRedis::start(
        "observability::an_outage_is_one_gauge_dip_counted_errors_and_two_log_lines",
    ) else {
        return;
    };
    let recorded = Recorded::default();
    let logs = Logs::everything();
    let prefix = unique_prefix("observed");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorded, || {
        runtime.block_on(async {
            let cache = Cache::redis(&redis.url(), &prefix).unwrap();
            for _ in 0..3 {
                cache.ping().await.unwrap();
            }
            redis.kill();
            for _ in 0..5 {
                assert!(cache.get("k").await.is_err());
            }
            redis.restart();
            status_becomes(&cache, true).await;
        });
    });
    assert_eq!(
        recorded.gauge("cache_up"),
        [0.0, 1.0, 0.0, 1.0],
        "created, connected, down, back"
    );
    assert_eq!(
        recorded.counter("cache_errors_total"),
        5,
        "the failed operations, and not the probes"
    );
    assert_eq!(logs.lines(&prefix, "connected to Redis"), 1);
    assert_eq!(logs.lines(&prefix, "Redis is down"), 1);
    assert_eq!(logs.lines(&prefix, "Redis is back"), 1);
}

/// A probe notices the outage and the recovery with no operation at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_follows_redis_without_traffic() {
    let Some(mut redis) =
        PrivateRedis::start("observability::the_status_follows_redis_without_traffic")
    else {
        return;
    };
    let cache = Cache::redis(&redis.url(), "idle:").unwrap();
    status_becomes(&cache, true).await;
    redis.kill();
    status_becomes(&cache, false).await;
    redis.restart();
    status_becomes(&cache, true).await;
}
