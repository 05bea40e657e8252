//! The second level of the quote cache, shared by every instance through a
//! [`Cache`] (Redis in a cluster): a price one instance fetched serves them
//! all for the rest of its life, and concurrent misses for a symbol across
//! the cluster make one request to the quote service.
//!
//! The in-process [`crate::QuoteCache`] stays in front: it answers most
//! reads without a round trip, and single-flights misses within the
//! instance, so that this loader sees at most one miss per symbol at a time
//! per instance.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// `::cache`, the crate, not this crate's `cache` module (the in-process cache).
use ::cache::{Cache, CacheError};
use engine::{Money, Symbol, UserId};

use crate::clock::remaining_life;
use crate::{Origin, Quote, QuoteClient, QuoteError, QuoteLoader};

/// How often an instance waiting for another's fetch looks for its price:
/// small next to a fetch (10 ms to 4 s), and one or two cheap reads each.
const POLL_INTERVAL: Duration = Duration::from_millis(15);

/// How much longer than the client's deadline a fetch lock lives. The
/// holder's fetch ends by the deadline; the margin covers the holder's own
/// cache round trips. The lock's expiry only matters when its holder died:
/// then the others wait this long before one of them fetches.
const LOCK_MARGIN: Duration = Duration::from_secs(2);

/// A [`QuoteLoader`] that looks in the shared cache before it asks the
/// quote service, and takes a per-symbol lock there so that one instance
/// fetches while the others wait for its price.
///
/// When the cache is unavailable it goes straight to the quote service:
/// slower (each instance fetches for itself), still correct. Each such
/// fetch is counted in `quote_cache_bypass_total`. The cache itself notices
/// when Redis is back, and the next miss takes the shared path again.
///
/// Shared entries, `quote:{SYMBOL}`, hold `{cents}:{fetched_at_ms}` and
/// expire when the price's TTL from its fetch is over; locks,
/// `quote-lock:{SYMBOL}`, hold their owner's token.
pub struct SharedQuoteLoader {
    cache: Cache,
    client: QuoteClient,
    ttl: Duration,
    /// This loader's share of every lock token: random, so that no two
    /// instances (or loaders) ever hold the same token.
    owner: u64,
    /// Makes each lock this loader takes its own token, so that releasing a
    /// lock that expired under a slow holder can never release a later one.
    locks_taken: AtomicU64,
}

impl SharedQuoteLoader {
    /// Loads through `cache`, fetching with `client`; a price is fresh for
    /// `ttl` from its fetch (the in-process cache in front should have the
    /// same TTL).
    pub fn new(cache: Cache, client: QuoteClient, ttl: Duration) -> SharedQuoteLoader {
        SharedQuoteLoader {
            cache,
            client,
            ttl,
            // `RandomState` keys come from the OS's randomness and differ
            // from one `RandomState` to the next: a random number without a
            // crate for it.
            owner: RandomState::new().hash_one(std::process::id()),
            locks_taken: AtomicU64::new(0),
        }
    }

    /// The shared path: a price, or the quote service's error; `Err` when
    /// the cache failed and the caller should go around it.
    async fn through_cache(
        &self,
        symbol: Symbol,
        user: &UserId,
    ) -> Result<Result<Quote, QuoteError>, CacheError> {
        let keys = Keys::new(symbol);
        loop {
            if let Some(quote) = self.read(&keys, symbol).await? {
                return Ok(Ok(quote));
            }
            let token = self.token();
            if self
                .cache
                .set_nx(&keys.lock, token.as_bytes(), self.lock_ttl())
                .await?
            {
                return Ok(self.fetch_holding_lock(&keys, symbol, user, &token).await);
            }
            // Another instance is fetching: wait for its price, or for its
            // lock to go without one (its fetch failed, or it died), and
            // then try to take over.
            loop {
                tokio::time::sleep(POLL_INTERVAL).await;
                if let Some(quote) = self.read(&keys, symbol).await? {
                    return Ok(Ok(quote));
                }
                if self.cache.get(&keys.lock).await?.is_none() {
                    break;
                }
            }
        }
    }

    /// Fetches, shares the price and releases the lock. Failures of the
    /// cache are not errors here: the price was paid for and is returned
    /// all the same, and a lock that cannot be released expires.
    async fn fetch_holding_lock(
        &self,
        keys: &Keys,
        symbol: Symbol,
        user: &UserId,
        token: &str,
    ) -> Result<Quote, QuoteError> {
        // The previous holder may have shared its price and released its
        // lock between our read and our taking the lock.
        let outcome = match self.read(keys, symbol).await {
            Ok(Some(quote)) => Ok(quote),
            Ok(None) | Err(_) => self.fetch_and_share(keys, symbol, user).await,
        };
        if let Err(error) = self
            .cache
            .delete_if_equals(&keys.lock, token.as_bytes())
            .await
        {
            tracing::debug!(%symbol, %error, "could not release a quote lock; it will expire");
        }
        outcome
    }

    async fn fetch_and_share(
        &self,
        keys: &Keys,
        symbol: Symbol,
        user: &UserId,
    ) -> Result<Quote, QuoteError> {
        let quote = self.client.load(symbol, user).await?;
        let life = remaining_life(quote.fetched_at_ms, self.ttl);
        if !life.is_zero() {
            let entry = encode(quote.price, quote.fetched_at_ms);
            if let Err(error) = self.cache.set(&keys.entry, entry.as_bytes(), life).await {
                tracing::debug!(%symbol, %error, "could not share a fetched price");
            }
        }
        Ok(quote)
    }

    /// The shared price of `symbol`, if there is one. An entry that does
    /// not decode counts as none: the next fetch overwrites it.
    async fn read(&self, keys: &Keys, symbol: Symbol) -> Result<Option<Quote>, CacheError> {
        let Some(entry) = self.cache.get(&keys.entry).await? else {
            return Ok(None);
        };
        let decoded = decode(&entry);
        if decoded.is_none() {
            tracing::warn!(%symbol, entry = %String::from_utf8_lossy(&entry), "ignoring an unreadable shared quote");
        }
        Ok(decoded.map(|(price, fetched_at_ms)| Quote {
            symbol,
            price,
            fetched_at_ms,
            origin: Origin::Cached,
        }))
    }

    fn token(&self) -> String {
        let n = self.locks_taken.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.owner)
    }

    fn lock_ttl(&self) -> Duration {
        self.client.config().deadline + LOCK_MARGIN
    }
}

impl QuoteLoader for SharedQuoteLoader {
    async fn load(&self, symbol: Symbol, user: &UserId) -> Result<Quote, QuoteError> {
        match self.through_cache(symbol, user).await {
            Ok(outcome) => outcome,
            Err(error) => {
                metrics::counter!("quote_cache_bypass_total").increment(1);
                tracing::debug!(%symbol, %error, "the shared quote cache is unavailable: fetching directly");
                self.client.load(symbol, user).await
            }
        }
    }
}

/// A symbol's keys in the shared cache.
struct Keys {
    entry: String,
    lock: String,
}

impl Keys {
    fn new(symbol: Symbol) -> Keys {
        Keys {
            entry: format!("quote:{symbol}"),
            lock: format!("quote-lock:{symbol}"),
        }
    }
}

fn encode(price: Money, fetched_at_ms: i64) -> String {
    format!("{}:{fetched_at_ms}", price.cents())
}

fn decode(entry: &[u8]) -> Option<(Money, i64)> {
    let (cents, fetched_at_ms) = std::str::from_utf8(entry).ok()?.split_once(':')?;
    let cents: i64 = cents.parse().ok().filter(|&cents| cents > 0)?;
    Some((Money::from_cents(cents), fetched_at_ms.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_no_entry() {
        let entry = encode(Money::from_cents(5817), 1_330_546_050_315);
        assert_eq!(entry, "5817:1330546050315");
        assert_eq!(
            decode(entry.as_bytes()),
            Some((Money::from_cents(5817), 1_330_546_050_315))
        );
        let garbage = "|5817|5817:|:1330546050315|58.17:1330546050315|0:1330546050315\
                       |-5:1330546050315|5817:soon";
        for entry in garbage.split('|') {
            assert_eq!(decode(entry.as_bytes()), None, "{entry:?}");
        }
        assert_eq!(decode(b"\xff:1"), None, "not UTF-8");
    }
}
