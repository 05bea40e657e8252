//! Redis going away and coming back, on private servers: operations fail
//! fast with `Unavailable` and never stall, the status follows, and the
//! same `Cache` works again once Redis is back.

use std::time::{Duration, Instant};

use cache::testing::PrivateRedis;
use cache::{Cache, CacheError, CacheStatus, RedisConfig};

const LONG: Duration = Duration::from_secs(60);

/// An operation's timeout (250 ms by default) plus room for a busy
/// machine: an operation that takes longer than this stalled.
const STALL: Duration = Duration::from_secs(2);

/// How long a recovery may take before the test gives up on it.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

/// Runs every operation once and checks that each fails as unavailable
/// without stalling.
async fn every_operation_is_unavailable(cache: &Cache) {
    let outcomes: [(&str, Result<(), CacheError>); 7] = [
        ("get", timed(cache.get("k")).await.map(drop)),
        ("set", timed(cache.set("k", b"v", LONG)).await),
        (
            "set_nx",
            timed(cache.set_nx("lock", b"v", LONG)).await.map(drop),
        ),
        ("delete", timed(cache.delete("k")).await),
        (
            "delete_if_equals",
            timed(cache.delete_if_equals("lock", b"v")).await.map(drop),
        ),
        (
            "incr_with_ttl",
            timed(cache.incr_with_ttl("n", LONG)).await.map(drop),
        ),
        ("ping", timed(cache.ping()).await),
    ];
    for (operation, outcome) in outcomes {
        assert!(
            matches!(outcome, Err(CacheError::Unavailable(_))),
            "{operation}: {outcome:?}"
        );
    }
}

/// Awaits `operation`, failing the test if it stalls.
async fn timed<T>(operation: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome = operation.await;
    assert!(
        started.elapsed() < STALL,
        "an operation took {:?}",
        started.elapsed()
    );
    outcome
}

/// Waits until `cache` is up again, without counting on any one attempt.
async fn recovers(cache: &Cache) {
    let started = Instant::now();
    while cache.ping().await.is_err() {
        assert!(
            started.elapsed() < RECOVERY_LIMIT,
            "still down after {RECOVERY_LIMIT:?}: {:?}",
            cache.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.status(), CacheStatus::Up);
}

fn is_down(status: &CacheStatus) -> bool {
    matches!(status, CacheStatus::Down { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_fails_operations_fast_and_the_same_cache_recovers() {
    let Some(mut redis) =
        PrivateRedis::start("outage::a_crash_fails_operations_fast_and_the_same_cache_recovers")
    else {
        return;
    };
    let cache = Cache::redis(&redis.url(), "crash:").unwrap();
    cache.set("k", b"v", LONG).await.unwrap();
    // Loads both scripts into this Redis, so that after the restart they
    // are missing from its script cache and must be loaded again.
    assert!(cache.set_nx("lock", b"me", LONG).await.unwrap());
    assert_eq!(cache.delete_if_equals("lock", b"me").await, Ok(true));
    assert_eq!(cache.incr_with_ttl("n", LONG).await, Ok(1));
    assert_eq!(cache.status(), CacheStatus::Up);

    redis.kill();
    every_operation_is_unavailable(&cache).await;
    let status = cache.status();
    assert!(is_down(&status), "{status:?}");

    redis.restart();
    recovers(&cache).await;
    // Without persistence the restarted Redis holds nothing: not the value,
    // not the scripts, which are loaded again on first use.
    assert_eq!(cache.get("k").await, Ok(None));
    assert!(cache.set_nx("lock", b"me", LONG).await.unwrap());
    assert_eq!(cache.delete_if_equals("lock", b"me").await, Ok(true));
    assert_eq!(cache.incr_with_ttl("n", LONG).await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_times_operations_out() {
    let Some(redis) = PrivateRedis::start("outage::a_hung_redis_times_operations_out") else {
        return;
    };
    let config = RedisConfig::default();
    let cache = Cache::redis_with_config(&redis.url(), "hung:", config).unwrap();
    cache.set("k", b"v", LONG).await.unwrap();

    redis.freeze();
    let error = timed(cache.get("k")).await.unwrap_err();
    assert_eq!(
        error,
        CacheError::Unavailable(format!("Redis did not answer within {:?}", config.timeout))
    );
    assert!(is_down(&cache.status()));
    // And so does every other operation while it is down.
    every_operation_is_unavailable(&cache).await;

    redis.thaw();
    recovers(&cache).await;
    // The connection survived the freeze, and so did the data.
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_made_while_redis_is_down_connects_when_it_starts() {
    let Some(mut redis) = PrivateRedis::not_started(
        "outage::a_cache_made_while_redis_is_down_connects_when_it_starts",
    ) else {
        return;
    };
    let cache = timed(async { Cache::redis(&redis.url(), "late:") })
        .await
        .expect("a Redis that is down is not a configuration error");
    let status = cache.status();
    assert!(is_down(&status), "not connected yet: {status:?}");
    every_operation_is_unavailable(&cache).await;

    redis.restart();
    recovers(&cache).await;
    cache.set("k", b"v", LONG).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}
