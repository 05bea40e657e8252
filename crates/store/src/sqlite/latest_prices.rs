//! The newest point of each symbol's price history, kept in memory beside
//! the SQLite file. This process's writer is the file's only writer, so
//! what it committed last for a symbol is the newest point there is: a
//! summary's prices become a lookup per symbol instead of an indexed read
//! each (late in the course's 100-user file a trader holds some 80
//! symbols, and the reads cost about a tenth of a summary).
//!
//! Filled two ways, both keeping the newer of two points (by time, then
//! row number, the order the history is read in):
//! - the writer, after each commit that added points and before it
//!   answers the batch, so that a read after the answer finds them;
//! - a reader, with what it read from the file for a symbol it did not
//!   find here. Its read may predate a commit whose points the writer has
//!   put here meanwhile; the newer point stays, so the older one is
//!   dropped, and a symbol found without a point is noted only if nothing
//!   is known of it yet.
//!
//! Between a commit and the writer's note of it, a reader's snapshot can
//! hold points this map does not. So the map also counts the price
//! generation it is current at (`prices.rs`: one more per batch that added
//! points, which only this writer makes), and a reader whose snapshot is
//! at a later generation reads the file instead. Otherwise a summary kept
//! under that generation would keep an older price after the fetch's
//! answer.
//!
//! Bounded by the number of symbols (at most three letters each).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use engine::Symbol;

use crate::prices::{NewPricePoint, PricePoint};

/// What is known of one symbol: its newest point and that point's row
/// number, or that the history has no point of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Newest { point: PricePoint, seq: i64 },
    Never,
}

impl Known {
    /// The newer of the two, by the history's order; a point is newer than
    /// none.
    fn newer(self, other: Known) -> Known {
        match (self, other) {
            (Known::Newest { point: a, seq: s }, Known::Newest { point: b, seq: t }) => {
                if (b.at_ms, t) > (a.at_ms, s) {
                    other
                } else {
                    self
                }
            }
            (Known::Never, other) => other,
            (this, Known::Never) => this,
        }
    }
}

/// Shared by the store's writer and its readers; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct LatestPrices {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug)]
struct Inner {
    known: HashMap<Symbol, Known>,
    /// The price generation of the last commit noted here.
    generation: i64,
}

impl Inner {
    /// Keeps the newer of what is known of `symbol` and `found`.
    fn note(&mut self, symbol: Symbol, found: Known) {
        let entry = self.known.entry(symbol).or_insert(found);
        *entry = entry.newer(found);
    }
}

impl LatestPrices {
    /// Nothing known yet, at the file's price `generation`.
    pub fn new(generation: i64) -> LatestPrices {
        LatestPrices {
            inner: Arc::new(RwLock::new(Inner {
                known: HashMap::new(),
                generation,
            })),
        }
    }

    /// The writer committed `points`: one batch, one generation more.
    pub fn committed(&self, points: &[NewPricePoint]) {
        if points.is_empty() {
            return;
        }
        let mut inner = self.inner.write().expect("not poisoned");
        inner.generation += 1;
        for new in points {
            let fresh = Known::Newest {
                point: new.point,
                seq: new.seq,
            };
            inner.note(new.symbol, fresh);
        }
    }

    /// A reader found `point` (with its row number) as the newest of
    /// `symbol` in the file, or no point at all.
    pub fn read(&self, symbol: Symbol, point: Option<(PricePoint, i64)>) {
        let found = match point {
            Some((point, seq)) => Known::Newest { point, seq },
            None => Known::Never,
        };
        self.inner
            .write()
            .expect("not poisoned")
            .note(symbol, found);
    }

    /// Splits `symbols` into the newest points known here (a symbol known
    /// to have none is left out) and the symbols to read from the file,
    /// for a reader whose snapshot is at price generation `snapshot`:
    /// every symbol, when this map has not yet noted that generation.
    pub fn lookup(
        &self,
        symbols: Vec<Symbol>,
        snapshot: i64,
        found: &mut HashMap<Symbol, PricePoint>,
    ) -> Vec<Symbol> {
        let inner = self.inner.read().expect("not poisoned");
        if inner.generation < snapshot {
            return symbols;
        }
        let mut unknown = Vec::new();
        for symbol in symbols {
            match inner.known.get(&symbol) {
                Some(Known::Newest { point, .. }) => {
                    found.insert(symbol, *point);
                }
                Some(Known::Never) => {}
                None => unknown.push(symbol),
            }
        }
        unknown
    }
}

#[cfg(test)]
mod tests {
    use engine::Money;

    use super::*;

    fn symbol(name: &str) -> Symbol {
        Symbol::parse(name).unwrap()
    }

    fn point(at_ms: i64, cents: i64) -> PricePoint {
        PricePoint {
            at_ms,
            price: Money::from_cents(cents),
        }
    }

    fn new(name: &str, at_ms: i64, seq: i64, cents: i64) -> NewPricePoint {
        NewPricePoint {
            symbol: symbol(name),
            seq,
            point: point(at_ms, cents),
        }
    }

    /// Looks `names` up for a snapshot at generation `at`.
    fn look(
        latest: &LatestPrices,
        at: i64,
        names: &[&str],
    ) -> (HashMap<Symbol, PricePoint>, Vec<Symbol>) {
        let mut found = HashMap::new();
        let unknown = latest.lookup(names.iter().map(|n| symbol(n)).collect(), at, &mut found);
        (found, unknown)
    }

    #[test]
    fn the_newest_point_stays_whoever_comes_last() {
        let latest = LatestPrices::new(0);
        // A reader's read from before a commit arrives after the writer's
        // points: the writer's stay.
        latest.committed(&[new("ABC", 2_000, 7, 150)]);
        latest.read(symbol("ABC"), Some((point(1_000, 100), 3)));
        // At the same time, the later row is the newer; a clock that went
        // back leaves the later time the newer.
        latest.committed(&[new("XYZ", 5_000, 9, 1), new("XYZ", 5_000, 10, 2)]);
        latest.committed(&[new("QQQ", 5_000, 11, 5), new("QQQ", 4_000, 12, 6)]);
        let (found, unknown) = look(&latest, 3, &["ABC", "XYZ", "QQQ", "DEF"]);
        assert_eq!(found[&symbol("ABC")], point(2_000, 150));
        assert_eq!(found[&symbol("XYZ")], point(5_000, 2));
        assert_eq!(found[&symbol("QQQ")], point(5_000, 5));
        assert_eq!(unknown, vec![symbol("DEF")], "never seen: read the file");
    }

    #[test]
    fn a_symbol_read_without_a_point_is_known_to_have_none_until_one_comes() {
        let latest = LatestPrices::new(0);
        latest.read(symbol("DEF"), None);
        let (found, unknown) = look(&latest, 0, &["DEF"]);
        assert!(found.is_empty() && unknown.is_empty(), "known: no point");
        latest.committed(&[new("DEF", 1_000, 1, 42)]);
        // A read that found nothing before that commit changes nothing.
        latest.read(symbol("DEF"), None);
        let (found, _) = look(&latest, 1, &["DEF"]);
        assert_eq!(found[&symbol("DEF")], point(1_000, 42));
    }

    #[test]
    fn a_snapshot_at_a_generation_not_yet_noted_reads_the_file() {
        let latest = LatestPrices::new(5);
        latest.committed(&[new("ABC", 1_000, 1, 10)]);
        let (found, unknown) = look(&latest, 6, &["ABC"]);
        assert_eq!((found.len(), unknown.len()), (1, 0), "noted: from memory");
        // A batch committed its points but has not noted them yet.
        let (found, unknown) = look(&latest, 7, &["ABC"]);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(unknown, vec![symbol("ABC")]);
        // Nothing to note: no new generation.
        latest.committed(&[]);
        assert_eq!(look(&latest, 7, &["ABC"]).1.len(), 1);
    }
}
