//! What only the Redis back end has: keys as Redis sees them, several
//! connections contending, configuration errors.

use std::sync::Arc;
use std::time::Duration;

use cache::testing::{shared_redis, unique_prefix};
use cache::{Cache, CacheError, redis_url};

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn keys_are_stored_under_the_prefix() {
    let Some(url) = shared_redis("redis::keys_are_stored_under_the_prefix") else {
        return;
    };
    let prefix = unique_prefix("prefix");
    let cache = Cache::redis(&url, &prefix).unwrap();
    cache.set("quote:ABC", b"5817", LONG).await.unwrap();
    let unprefixed = Cache::redis(&url, "").unwrap();
    assert_eq!(
        unprefixed
            .get(&format!("{prefix}quote:ABC"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"5817"[..])
    );
    assert_eq!(unprefixed.get("quote:ABC").await, Ok(None));
}

/// As instances do: each with its own connection to one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lock_winner_across_separate_connections() {
    let Some(url) = shared_redis("redis::one_lock_winner_across_separate_connections") else {
        return;
    };
    let prefix = unique_prefix("contention");
    let instances: Vec<Cache> = (0..4)
        .map(|_| Cache::redis(&url, &prefix).unwrap())
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(40));
    let tries: Vec<_> = (0..40)
        .map(|i| {
            let cache = instances[i % instances.len()].clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                cache.set_nx("lock", b"x", LONG).await.unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for attempt in tries {
        winners += usize::from(attempt.await.unwrap());
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn a_malformed_url_is_a_configuration_error() {
    for url in ["", "localhost:6379", "http://localhost:6379/", "redis://"] {
        assert!(
            matches!(Cache::redis(url, "p:"), Err(CacheError::Config(_))),
            "{url:?}"
        );
    }
    assert!(Cache::redis(&redis_url("localhost", 6379), "p:").is_ok());
}

#[test]
fn a_redis_cache_needs_a_runtime_for_its_connection() {
    assert!(matches!(
        Cache::redis(&redis_url("127.0.0.1", 6379), "p:"),
        Err(CacheError::Config(message)) if message.contains("Tokio runtime")
    ));
}
