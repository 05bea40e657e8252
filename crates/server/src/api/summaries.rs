//! Traders' summaries (`GET /api/v1/users/{user}`), kept rendered under
//! the account version they show.
//!
//! A summary costs three reads (the account, decoded, the latest history
//! rows, decoded, and the newest prices of its holdings) and its JSON;
//! checking a kept one is one read, in one round trip
//! ([`store::Reads::summary_stamp`]: the version, the price generation,
//! and the newest prices of the symbols it was valued at only if the
//! generation moved since the entry last checked them). Every change
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
use store::{PricePoint, SummaryStamp};

/// The summaries this instance rendered last, one per trader.
#[derive(Default)]
pub struct Summaries {
    entries: Mutex<HashMap<UserId, Entry>>,
}

struct Entry {
    version: i64,
    /// When the first pending order in it expires.
    good_until_ms: i64,
    /// A price generation at which its prices were the newest.
    generation: i64,
    kept: Kept,
}

/// A rendered summary, and the prices its holdings were valued at.
struct Kept {
    body: Bytes,
    /// The newest price of each held symbol that had one.
    prices: HashMap<Symbol, PricePoint>,
    /// The symbols the summary holds, in the order its stamp asks for them.
    symbols: Vec<Symbol>,
}

/// What to read a user's stamp with: the symbols and the price generation
/// of the summary kept for them (none and `None` when none is kept).
#[derive(Debug, Default, PartialEq)]
pub struct Probe {
    pub symbols: Vec<Symbol>,
    pub generation: Option<i64>,
}

impl Summaries {
    /// Enough for every active trader; past it the cache starts over
    /// rather than grow without bound.
    const MAX_ENTRIES: usize = 10_000;

    /// What to read `user`'s stamp with.
    pub fn probe(&self, user: &UserId) -> Probe {
        let entries = self.entries.lock().expect("not poisoned");
        entries
            .get(user)
            .map_or_else(Probe::default, |entry| Probe {
                symbols: entry.kept.symbols.clone(),
                generation: Some(entry.generation),
            })
    }

    /// The summary of `user`, if one is kept that is still true at
    /// `now_ms` for `stamp`, read with `probe`: the same version, the same
    /// symbols, and the same newest prices, known from an unchanged price
    /// generation or else compared. Prices found the same are the newest
    /// at the stamp's generation, which the entry then keeps.
    pub fn get(
        &self,
        user: &UserId,
        probe: &Probe,
        stamp: &SummaryStamp,
        now_ms: i64,
    ) -> Option<Bytes> {
        let mut entries = self.entries.lock().expect("not poisoned");
        let entry = entries.get_mut(user)?;
        if entry.version != stamp.version
            || now_ms >= entry.good_until_ms
            || entry.kept.symbols != probe.symbols
        {
            return None;
        }
        match &stamp.prices {
            None if entry.generation == stamp.generation => {}
            Some(prices) if *prices == entry.kept.prices => entry.generation = stamp.generation,
            _ => return None,
        }
        Some(entry.kept.body.clone())
    }

    /// Keeps `body`, the JSON of `summary` (with its history) at `version`
    /// valued at `prices`, the newest at price generation `generation` or
    /// later (read before them).
    pub fn put(
        &self,
        user: &UserId,
        version: i64,
        generation: i64,
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
                generation,
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

    fn stamp(version: i64, generation: i64, prices: Option<&[(Symbol, i64)]>) -> SummaryStamp {
        SummaryStamp {
            version,
            generation,
            prices: prices.map(|prices| {
                prices
                    .iter()
                    .map(|&(symbol, cents)| {
                        let point = PricePoint {
                            at_ms: 1,
                            price: Money::from_cents(cents),
                        };
                        (symbol, point)
                    })
                    .collect()
            }),
        }
    }

    #[test]
    fn an_entry_holds_for_its_version_until_its_first_order_expires() {
        let cache = Summaries::default();
        let user = UserId::parse("u1").unwrap();
        let kept = |version| (cache.probe(&user), stamp(version, 0, None));
        let v3 = Bytes::from_static(b"v3");
        cache.put(
            &user,
            3,
            0,
            &summary(Some(1_000)),
            HashMap::new(),
            v3.clone(),
        );
        let (probe, at) = kept(3);
        assert_eq!(cache.get(&user, &probe, &at, 999), Some(v3));
        let (probe, newer) = kept(4);
        assert_eq!(
            cache.get(&user, &probe, &newer, 999),
            None,
            "a newer version"
        );
        assert_eq!(
            cache.get(&user, &probe, &at, 1_000),
            None,
            "the order expired"
        );
        let v4 = Bytes::from_static(b"v4");
        cache.put(&user, 4, 0, &summary(None), HashMap::new(), v4.clone());
        assert_eq!(cache.get(&user, &probe, &newer, i64::MAX - 1), Some(v4));
        let other = UserId::parse("u2").unwrap();
        assert_eq!(cache.probe(&other), Probe::default());
        assert_eq!(cache.get(&other, &probe, &newer, 0), None);
    }

    #[test]
    fn an_entry_holds_only_while_its_symbols_keep_their_newest_prices() {
        let cache = Summaries::default();
        let user = UserId::parse("u1").unwrap();
        let abc = Symbol::parse("ABC").unwrap();
        let xyz = Symbol::parse("XYZ").unwrap();
        let mut held = summary(None);
        held.holdings = vec![engine::Holding {
            symbol: abc,
            shares: 1,
            reserved_shares: 0,
        }];
        let at_100 = stamp(1, 5, Some(&[(abc, 100)]));
        let body = Bytes::from_static(b"at 100");
        let prices = at_100.prices.clone().unwrap();
        cache.put(&user, 1, 5, &held, prices, body.clone());
        let probe = cache.probe(&user);
        assert_eq!(
            probe,
            Probe {
                symbols: vec![abc],
                generation: Some(5)
            }
        );
        let check = |stamp: SummaryStamp| cache.get(&user, &probe, &stamp, 0);
        assert_eq!(
            check(stamp(1, 5, None)),
            Some(body.clone()),
            "the same generation"
        );
        assert_eq!(
            check(stamp(1, 6, None)),
            None,
            "another generation, prices not read"
        );
        assert_eq!(check(stamp(1, 6, Some(&[(abc, 101)]))), None, "a new price");
        assert_eq!(
            check(stamp(1, 6, Some(&[]))),
            None,
            "a price it had is gone"
        );
        let other = Probe {
            symbols: vec![xyz],
            generation: Some(5),
        };
        assert_eq!(
            cache.get(&user, &other, &stamp(1, 5, None), 0),
            None,
            "other symbols"
        );
        // Another generation whose prices of ABC are the same: it stands,
        // and that generation is now known to need no look at them.
        assert_eq!(check(stamp(1, 7, Some(&[(abc, 100)]))), Some(body.clone()));
        assert_eq!(cache.probe(&user).generation, Some(7));
        assert_eq!(check(stamp(1, 7, None)), Some(body));
    }
}
