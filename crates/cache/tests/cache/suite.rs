//! The semantics both back ends share, written once and run on each.
//!
//! A case receives a constructor taking a namespace, so that a case can
//! build several caches; on Redis every namespace sits under a prefix
//! unique to the test.

use std::sync::Arc;
use std::time::Duration;

use cache::{Cache, CacheError, CacheStatus};
use tokio::time::sleep;

type NewCache<'a> = &'a dyn Fn(&str) -> Cache;

/// Long enough that a value cannot expire while a case looks at it.
const LONG: Duration = Duration::from_secs(60);
/// Short enough to wait out, long enough to still be there on the next
/// line of a case.
const SHORT: Duration = Duration::from_millis(300);
/// Comfortably past `SHORT`.
const PAST_SHORT: Duration = Duration::from_millis(700);

macro_rules! on_both_back_ends {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use cache::Cache;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&|namespace: &str| Cache::memory(namespace)).await;
                }
            )*
        }

        mod redis {
            use cache::Cache;
            use cache::testing::{shared_redis, unique_prefix};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let name = concat!("suite::redis::", stringify!($case));
                    let Some(url) = shared_redis(name) else { return };
                    let prefix = unique_prefix(stringify!($case));
                    super::$case(&|namespace: &str| {
                        Cache::redis(&url, &format!("{prefix}{namespace}")).unwrap()
                    })
                    .await;
                }
            )*
        }
    };
}

on_both_back_ends!(
    stores_and_reads_back_any_bytes,
    a_value_expires_after_its_ttl,
    set_replaces_the_value_and_its_ttl,
    set_nx_takes_only_a_free_key,
    set_nx_has_exactly_one_winner_among_many,
    delete_removes_a_key,
    delete_if_equals_deletes_only_its_own_value,
    a_counter_counts_in_a_fixed_window,
    counting_what_is_not_a_counter_is_refused,
    namespaces_keep_caches_apart,
    it_answers_pings_and_is_up,
);

async fn stores_and_reads_back_any_bytes(new: NewCache<'_>) {
    let cache = new("");
    assert_eq!(cache.get("missing").await, Ok(None));
    cache.set("text", b"58.17", LONG).await.unwrap();
    assert_eq!(
        cache.get("text").await.unwrap().as_deref(),
        Some(&b"58.17"[..])
    );
    let binary = [0u8, 255, 10, 13, 0, 128];
    cache.set("binary", &binary, LONG).await.unwrap();
    assert_eq!(
        cache.get("binary").await.unwrap().as_deref(),
        Some(&binary[..])
    );
    cache.set("empty", b"", LONG).await.unwrap();
    assert_eq!(cache.get("empty").await.unwrap().as_deref(), Some(&b""[..]));
}

async fn a_value_expires_after_its_ttl(new: NewCache<'_>) {
    let cache = new("");
    cache.set("short", b"v", SHORT).await.unwrap();
    cache.set("long", b"v", LONG).await.unwrap();
    assert!(cache.get("short").await.unwrap().is_some());
    sleep(PAST_SHORT).await;
    assert_eq!(cache.get("short").await, Ok(None));
    assert!(cache.get("long").await.unwrap().is_some());
}

async fn set_replaces_the_value_and_its_ttl(new: NewCache<'_>) {
    let cache = new("");
    cache.set("k", b"first", LONG).await.unwrap();
    cache.set("k", b"second", SHORT).await.unwrap();
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    sleep(PAST_SHORT).await;
    assert_eq!(
        cache.get("k").await,
        Ok(None),
        "the new TTL replaced the old"
    );
}

async fn set_nx_takes_only_a_free_key(new: NewCache<'_>) {
    let cache = new("");
    assert_eq!(cache.set_nx("lock", b"a", SHORT).await, Ok(true));
    assert_eq!(cache.set_nx("lock", b"b", LONG).await, Ok(false));
    assert_eq!(cache.get("lock").await.unwrap().as_deref(), Some(&b"a"[..]));
    // A lock whose holder died frees itself.
    sleep(PAST_SHORT).await;
    assert_eq!(cache.set_nx("lock", b"b", LONG).await, Ok(true));
    assert_eq!(cache.get("lock").await.unwrap().as_deref(), Some(&b"b"[..]));
    cache.delete("lock").await.unwrap();
    assert_eq!(cache.set_nx("lock", b"c", LONG).await, Ok(true));
}

async fn set_nx_has_exactly_one_winner_among_many(new: NewCache<'_>) {
    let cache = new("");
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tries: Vec<_> = (0..64)
        .map(|i| {
            let cache = cache.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let token = format!("task{i}");
                let won = cache.set_nx("lock", token.as_bytes(), LONG).await.unwrap();
                (won, token)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in tries {
        let (won, token) = attempt.await.unwrap();
        if won {
            winners.push(token);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        cache.get("lock").await.unwrap().as_deref(),
        Some(winners[0].as_bytes()),
        "the lock holds the winner's token"
    );
}

async fn delete_removes_a_key(new: NewCache<'_>) {
    let cache = new("");
    cache.set("k", b"v", LONG).await.unwrap();
    cache.delete("k").await.unwrap();
    assert_eq!(cache.get("k").await, Ok(None));
    assert_eq!(cache.delete("never-set").await, Ok(()));
}

async fn delete_if_equals_deletes_only_its_own_value(new: NewCache<'_>) {
    let cache = new("");
    assert!(cache.set_nx("lock", b"mine", LONG).await.unwrap());
    assert_eq!(cache.delete_if_equals("lock", b"theirs").await, Ok(false));
    assert_eq!(cache.delete_if_equals("lock", b"min").await, Ok(false));
    assert_eq!(
        cache.get("lock").await.unwrap().as_deref(),
        Some(&b"mine"[..])
    );
    assert_eq!(cache.delete_if_equals("lock", b"mine").await, Ok(true));
    assert_eq!(cache.get("lock").await, Ok(None));
    assert_eq!(cache.delete_if_equals("lock", b"mine").await, Ok(false));

    // Our lock expired and someone else took it: releasing ours leaves
    // theirs alone.
    assert!(cache.set_nx("lock", b"mine", SHORT).await.unwrap());
    sleep(PAST_SHORT).await;
    assert!(cache.set_nx("lock", b"theirs", LONG).await.unwrap());
    assert_eq!(cache.delete_if_equals("lock", b"mine").await, Ok(false));
    assert_eq!(
        cache.get("lock").await.unwrap().as_deref(),
        Some(&b"theirs"[..])
    );
}

async fn a_counter_counts_in_a_fixed_window(new: NewCache<'_>) {
    let cache = new("");
    assert_eq!(cache.incr_with_ttl("hits", SHORT).await, Ok(1));
    assert_eq!(cache.incr_with_ttl("hits", SHORT).await, Ok(2));
    assert_eq!(cache.incr_with_ttl("hits", LONG).await, Ok(3));
    assert_eq!(cache.get("hits").await.unwrap().as_deref(), Some(&b"3"[..]));
    // Later increments did not extend the window the first one opened.
    sleep(PAST_SHORT).await;
    assert_eq!(cache.incr_with_ttl("hits", SHORT).await, Ok(1));

    let many: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.incr_with_ttl("burst", LONG).await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for increment in many {
        counts.push(increment.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<i64>>(), "no increment lost");
}

async fn counting_what_is_not_a_counter_is_refused(new: NewCache<'_>) {
    let cache = new("");
    cache.set("text", b"abc", LONG).await.unwrap();
    assert!(matches!(
        cache.incr_with_ttl("text", LONG).await,
        Err(CacheError::Refused(_))
    ));
    cache
        .set("max", i64::MAX.to_string().as_bytes(), LONG)
        .await
        .unwrap();
    assert!(matches!(
        cache.incr_with_ttl("max", LONG).await,
        Err(CacheError::Refused(_))
    ));
    // A refusal is not an outage.
    assert_eq!(cache.status(), CacheStatus::Up);
    assert_eq!(
        cache.get("text").await.unwrap().as_deref(),
        Some(&b"abc"[..])
    );
}

async fn namespaces_keep_caches_apart(new: NewCache<'_>) {
    let quotes = new("quotes:");
    let sessions = new("sessions:");
    quotes.set("k", b"price", LONG).await.unwrap();
    assert_eq!(sessions.get("k").await, Ok(None));
    sessions.set("k", b"session", LONG).await.unwrap();
    assert_eq!(
        quotes.get("k").await.unwrap().as_deref(),
        Some(&b"price"[..])
    );
    assert_eq!(
        sessions.get("k").await.unwrap().as_deref(),
        Some(&b"session"[..])
    );
}

async fn it_answers_pings_and_is_up(new: NewCache<'_>) {
    let cache = new("");
    assert_eq!(cache.ping().await, Ok(()));
    assert_eq!(cache.status(), CacheStatus::Up);
}
