//! Rendered page fragments in the shared cache.
//!
//! A trader's fragments are keyed by their account version, which every
//! step that changes what they can see bumps (each command, each trigger a
//! price fires, marking notifications read), so the first view after a
//! change, on any instance, misses the old entry and renders anew; a TTL
//! bounds what time alone changes (prices, an order running out). Shared
//! fragments (a quote) are keyed by what they show and live a fixed time.
//!
//! Only what costs queries or quotes is cached, and nothing that differs
//! between two views of one version: no form (each carries a fresh
//! transaction number and the session's CSRF token), no instance id.

use std::future::Future;
use std::time::Duration;

use cache::Cache;

use crate::web::error::PageError;
use crate::web::templates::Fragment;

/// The key of one trader's fragment `page` (with its parameters) at one
/// account version.
pub fn trader_key(page: &str, user: &engine::UserId, version: i64, params: &str) -> String {
    format!("page:{page}:{user}:v{version}:{params}")
}

/// The fragment under `key` from the cache, or `render`ed and stored for
/// `ttl`. A cache that cannot be reached costs a render, never the page.
/// A page's live refresh (`live_refresh`, see [`crate::web::live`])
/// renders it anew, as what it shows (a price) may have changed without
/// its key, and stores it for the views after.
pub async fn fragment<F, Fut>(
    cache: &Cache,
    page: &'static str,
    key: &str,
    ttl: Duration,
    live_refresh: bool,
    render: F,
) -> Result<Fragment, PageError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Fragment, PageError>>,
{
    let cached = if live_refresh {
        Ok(None)
    } else {
        cache.get(key).await
    };
    match cached {
        Ok(Some(bytes)) => {
            if let Ok(text) = String::from_utf8(bytes.to_vec()) {
                metrics::counter!("page_cache_hits_total", "page" => page).increment(1);
                return Ok(Fragment::from_cached(text));
            }
        }
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, page, "page cache unavailable; rendering"),
    }
    metrics::counter!("page_cache_misses_total", "page" => page).increment(1);
    let fragment = render().await?;
    if let Err(error) = cache.set(key, fragment.as_str().as_bytes(), ttl).await {
        tracing::debug!(%error, page, "could not keep a rendered fragment");
    }
    Ok(fragment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::UserId;

    #[test]
    fn a_new_version_is_a_new_key() {
        let user = UserId::parse("alice").unwrap();
        let v1 = trader_key("dashboard", &user, 1, "");
        assert_eq!(v1, "page:dashboard:alice:v1:");
        assert_ne!(v1, trader_key("dashboard", &user, 2, ""));
        assert_ne!(v1, trader_key("history", &user, 1, ""));
        let bob = UserId::parse("bob").unwrap();
        assert_ne!(v1, trader_key("dashboard", &bob, 1, ""));
    }

    #[derive(askama::Template)]
    #[template(source = "<b>{{ n }}</b>", ext = "html")]
    struct Counted {
        n: u32,
    }

    #[tokio::test]
    async fn a_stored_fragment_is_served_until_its_key_changes() {
        let cache = Cache::memory("t:");
        let renders = std::cell::Cell::new(0);
        let get = |key: &'static str| {
            let renders = &renders;
            let cache = &cache;
            async move {
                fragment(
                    cache,
                    "test",
                    key,
                    Duration::from_secs(60),
                    false,
                    || async {
                        renders.set(renders.get() + 1);
                        Fragment::render(&Counted { n: renders.get() })
                    },
                )
                .await
                .unwrap()
                .to_string()
            }
        };
        assert_eq!(get("k:v1").await, "<b>1</b>");
        assert_eq!(get("k:v1").await, "<b>1</b>", "served from the cache");
        assert_eq!(get("k:v2").await, "<b>2</b>", "a new version renders");
        assert_eq!(renders.get(), 2);
        let refreshed = fragment(
            &cache,
            "test",
            "k:v2",
            Duration::from_secs(60),
            true,
            || async { Fragment::render(&Counted { n: 7 }) },
        )
        .await
        .unwrap();
        assert_eq!(
            refreshed.to_string(),
            "<b>7</b>",
            "a live refresh renders anew"
        );
        assert_eq!(
            get("k:v2").await,
            "<b>7</b>",
            "and keeps it for the next view"
        );
        assert_eq!(renders.get(), 2);
    }
}
