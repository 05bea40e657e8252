//! Traders' summaries (`GET /api/v1/users/{user}`), kept rendered under
//! the account version they show.
//!
//! A summary costs two reads (the account, decoded, and the latest history
//! rows, decoded) and its JSON; the version is one key lookup. Every change
//! of what a trader sees moves the version on in the same transaction as
//! the change, whichever instance made it, so a summary kept under the
//! current version is the one a fresh read would build: a read right after
//! a write shows it, on any instance. Two things change a summary without
//! a new version: time (a pending order expires after 60 s), so an entry
//! is only good until the first of its pending orders expires; and prices
//! (the money view values holdings at the newest fetched price), so an
//! entry keeps the prices it was valued at, and the caller serves it only
//! while the newest prices of its symbols are still those.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use engine::{Summary, Symbol, UserId};
use store::PricePoint;

/// The summaries this instance rendered last, one per trader.
#[derive(Default)]
pub struct Summaries {
    entries: Mutex<HashMap<UserId, Entry>>,
}

struct Entry {
    version: i64,
    /// When the first pending order in it expires.
    good_until_ms: i64,
    kept: Kept,
}

/// A rendered summary, and the prices its holdings were valued at.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub body: Bytes,
    /// The newest price of each held symbol that had one.
    pub prices: HashMap<Symbol, PricePoint>,
    symbols: Vec<Symbol>,
}

impl Kept {
    /// The symbols the summary holds.
    pub fn symbols(&self) -> Vec<Symbol> {
        self.symbols.clone()
    }
}

impl Summaries {
    /// Enough for every active trader; past it the cache starts over
    /// rather than grow without bound.
    const MAX_ENTRIES: usize = 10_000;

    /// The summary of `user` at `version`, if one is kept and still true
    /// at `now_ms` (the caller checks its prices).
    pub fn get(&self, user: &UserId, version: i64, now_ms: i64) -> Option<Kept> {
        let entries = self.entries.lock().expect("not poisoned");
        let entry = entries.get(user)?;
        (entry.version == version && now_ms < entry.good_until_ms).then(|| entry.kept.clone())
    }

    /// Keeps `body`, the JSON of `summary` (with its history) at `version`
    /// valued at `prices`.
    pub fn put(
        &self,
        user: &UserId,
        version: i64,
        summary: &Summary,
        prices: HashMap<Symbol, PricePoint>,
        body: Bytes,
    ) {
        let good_until_ms = summary
            .pending_buys
            .iter()
            .chain(&summary.pending_sells)
            .map(|order| order.expires_at_ms)
            .min()
            .unwrap_or(i64::MAX);
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() >= Self::MAX_ENTRIES && !entries.contains_key(user) {
            entries.clear();
        }
        entries.insert(
            user.clone(),
            Entry {
                version,
                good_until_ms,
                kept: Kept {
                    body,
                    prices,
                    symbols: summary.holdings.iter().map(|h| h.symbol).collect(),
                },
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Money, PendingView, Symbol};

    fn summary(expiring: Option<i64>) -> Summary {
        Summary {
            cash: Money::ZERO,
            reserved_cash: Money::ZERO,
            holdings: Vec::new(),
            pending_buys: expiring
                .map(|at| PendingView {
                    symbol: Symbol::parse("ABC").unwrap(),
                    shares: 1,
                    price: Money::from_cents(1),
                    amount: Money::from_cents(1),
                    created_at_ms: at - 60_000,
                    expires_at_ms: at,
                })
                .into_iter()
                .collect(),
            pending_sells: Vec::new(),
            buy_triggers: Vec::new(),
            sell_triggers: Vec::new(),
        }
    }

    #[test]
    fn an_entry_holds_for_its_version_until_its_first_order_expires() {
        let cache = Summaries::default();
        let user = UserId::parse("u1").unwrap();
        let body = |kept: Option<Kept>| kept.map(|k| k.body);
        cache.put(
            &user,
            3,
            &summary(Some(1_000)),
            HashMap::new(),
            Bytes::from_static(b"v3"),
        );
        assert_eq!(
            body(cache.get(&user, 3, 999)),
            Some(Bytes::from_static(b"v3"))
        );
        assert_eq!(cache.get(&user, 4, 999), None, "a newer version");
        assert_eq!(cache.get(&user, 3, 1_000), None, "the order expired");
        cache.put(
            &user,
            4,
            &summary(None),
            HashMap::new(),
            Bytes::from_static(b"v4"),
        );
        assert_eq!(
            body(cache.get(&user, 4, i64::MAX - 1)),
            Some(Bytes::from_static(b"v4"))
        );
        assert_eq!(cache.get(&UserId::parse("u2").unwrap(), 4, 0), None);
    }
}
