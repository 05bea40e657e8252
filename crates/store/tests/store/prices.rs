//! The price history: every fetched price kept with its time, in the same
//! step as the fetch's log row, bounded per symbol.

use std::sync::atomic::Ordering;

use engine::{CommandName, Money, Symbol};
use store::{
    Job, PRICE_HISTORY_LIMIT, PricePoint, QuoteFetch, QuoteUse, Reads, SummaryExtras, SummaryStamp,
    Work, Writes,
};

use crate::fixture::{Fixture, T0, add, cached, job, on_both_back_ends, request, user};

on_both_back_ends!(
    every_fetched_price_is_kept_with_its_time,
    the_history_keeps_the_newest_points_of_each_symbol,
    a_summary_stamp_is_the_version_and_the_newest_prices_asked_for,
    summary_extras_are_the_newest_prices_and_the_history_in_one_read,
);

fn symbol(name: &str) -> Symbol {
    Symbol::parse(name).unwrap()
}

fn fetch(name: &str, cents: i64) -> QuoteFetch {
    QuoteFetch {
        symbol: symbol(name),
        price: Money::from_cents(cents),
        user: "u1".into(),
        quote_server_time_ms: 0,
        cryptokey: "k".into(),
    }
}

/// A fetch outside any command (a page's price, the trigger refresh).
fn fetched(name: &str, cents: i64) -> Job {
    Job {
        user: None,
        idem_key: None,
        work: Work::Quote(fetch(name, cents)),
    }
}

fn point(at_ms: i64, cents: i64) -> PricePoint {
    PricePoint {
        at_ms,
        price: Money::from_cents(cents),
    }
}

async fn every_fetched_price_is_kept_with_its_time(f: Fixture) {
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    f.store.submit(fetched("ABC", 1_000)).await.unwrap();
    f.now.store(T0 + 1_000, Ordering::SeqCst);
    // A command whose own request fetched its price.
    let quote = |key, quote| {
        job(
            "u1",
            Some(key),
            request(CommandName::Quote, Some("u1"), Some("ABC"), None),
            quote,
        )
    };
    let bought = Some(QuoteUse::Fetched(fetch("ABC", 1_050)));
    f.store.submit(quote(2, bought)).await.unwrap();
    // A price from the cache was not fetched: it is already in the history.
    f.now.store(T0 + 2_000, Ordering::SeqCst);
    f.store
        .submit(quote(3, cached("ABC", 1_050)))
        .await
        .unwrap();
    f.store.submit(fetched("XYZ", 7)).await.unwrap();
    // A refused command's fetch still happened.
    let refused = job(
        "nobody",
        Some(1),
        request(CommandName::Quote, Some("nobody"), Some("ABC"), None),
        Some(QuoteUse::Fetched(fetch("ABC", 990))),
    );
    f.store.submit(refused).await.unwrap();

    let reader = f.reader();
    assert_eq!(
        reader.price_history(symbol("ABC"), None).await.unwrap(),
        vec![
            point(T0, 1_000),
            point(T0 + 1_000, 1_050),
            point(T0 + 2_000, 990)
        ]
    );
    assert_eq!(
        reader.price_history(symbol("ABC"), Some(T0)).await.unwrap(),
        vec![point(T0 + 1_000, 1_050), point(T0 + 2_000, 990)],
        "since is exclusive"
    );
    assert_eq!(
        reader.price_history(symbol("QQQ"), None).await.unwrap(),
        Vec::new()
    );
    let latest = reader
        .latest_prices(vec![symbol("ABC"), symbol("XYZ"), symbol("QQQ")])
        .await
        .unwrap();
    assert_eq!(latest.len(), 2, "{latest:?}");
    assert_eq!(latest[&symbol("ABC")], point(T0 + 2_000, 990));
    assert_eq!(latest[&symbol("XYZ")], point(T0 + 2_000, 7));
    // The account is untouched by fetches.
    assert!(reader.account(&user("u1")).await.unwrap().is_some());
}

async fn the_history_keeps_the_newest_points_of_each_symbol(f: Fixture) {
    let extra = 7;
    let total = PRICE_HISTORY_LIMIT + extra;
    // The oldest, one at a time: the ones to go.
    for i in 0..extra {
        f.now.store(T0 + i as i64, Ordering::SeqCst);
        f.store.submit(fetched("ABC", 1 + i as i64)).await.unwrap();
    }
    // The rest in groups submitted together, each group later than the
    // one before, so that batches carry several points. (Batches
    // committing at once each trim what they saw: the bound is exact again
    // once a fetch commits alone, as the last one here does.)
    let (last, rest) = (total - 1, (extra..total - 1).collect::<Vec<_>>());
    for group in rest.chunks(50) {
        f.now.store(T0 + 1_000 + group[0] as i64, Ordering::SeqCst);
        let jobs = group
            .iter()
            .map(|&i| f.store.submit(fetched("ABC", 1 + i as i64)));
        for done in futures::future::join_all(jobs).await {
            done.unwrap();
        }
    }
    f.now.store(T0 + 10_000, Ordering::SeqCst);
    f.store
        .submit(fetched("ABC", 1 + last as i64))
        .await
        .unwrap();
    f.store.submit(fetched("XYZ", 5)).await.unwrap();
    let reader = f.reader();
    let kept = reader.price_history(symbol("ABC"), None).await.unwrap();
    assert_eq!(kept.len(), PRICE_HISTORY_LIMIT);
    let mut prices: Vec<i64> = kept.iter().map(|p| p.price.cents()).collect();
    prices.sort_unstable();
    let newest: Vec<i64> = (extra..total).map(|i| 1 + i as i64).collect();
    assert_eq!(prices, newest, "the oldest points went");
    assert_eq!(
        reader
            .price_history(symbol("XYZ"), None)
            .await
            .unwrap()
            .len(),
        1,
        "another symbol keeps its own"
    );
}

async fn a_summary_stamp_is_the_version_and_the_newest_prices_asked_for(f: Fixture) {
    let reader = f.reader();
    let asked = || vec![symbol("XYZ"), symbol("QQQ"), symbol("ABC")];
    let u1 = user("u1");
    let stamp = |known| reader.summary_stamp(&u1, asked(), known);
    assert_eq!(stamp(None).await.unwrap(), None, "no account, no stamp");
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    let version = reader.account(&user("u1")).await.unwrap().unwrap().version;
    let expected = |generation, prices: Option<Vec<(&str, PricePoint)>>| {
        Some(SummaryStamp {
            version,
            generation,
            prices: prices.map(|p| p.into_iter().map(|(s, p)| (symbol(s), p)).collect()),
        })
    };
    assert_eq!(
        stamp(None).await.unwrap(),
        expected(0, Some(vec![])),
        "no prices yet"
    );
    assert_eq!(
        reader
            .summary_stamp(&user("u1"), Vec::new(), None)
            .await
            .unwrap(),
        expected(0, Some(vec![])),
        "nothing asked"
    );
    assert_eq!(
        stamp(Some(0)).await.unwrap(),
        expected(0, None),
        "known: not read"
    );

    f.store.submit(fetched("ABC", 1_000)).await.unwrap();
    f.now.store(T0 + 1_000, Ordering::SeqCst);
    // Two fetches in one batch count once.
    let (abc, xyz) = futures::join!(
        f.store.submit(fetched("ABC", 1_050)),
        f.store.submit(fetched("XYZ", 7))
    );
    let (abc, xyz) = (abc.unwrap(), xyz.unwrap());
    f.store.submit(fetched("DEF", 3)).await.unwrap();
    let now = stamp(Some(0)).await.unwrap().unwrap();
    assert!(
        (3..=4).contains(&now.generation),
        "one count per batch that added points: {now:?} ({abc:?}, {xyz:?})"
    );
    assert_eq!(
        Some(now.clone()),
        expected(
            now.generation,
            Some(vec![
                ("ABC", point(T0 + 1_000, 1_050)),
                ("XYZ", point(T0 + 1_000, 7)),
            ])
        ),
        "the newest point of each symbol asked that has one"
    );
    assert_eq!(
        now.prices,
        Some(reader.latest_prices(asked()).await.unwrap()),
        "the same prices as latest_prices"
    );
    assert_eq!(
        stamp(Some(now.generation)).await.unwrap(),
        expected(now.generation, None),
        "an unchanged generation: no prices read"
    );
    // A command with no fetch leaves the generation.
    f.store.submit(add("u1", 2, "1.00")).await.unwrap();
    assert_eq!(
        stamp(Some(now.generation))
            .await
            .unwrap()
            .map(|s| (s.generation, s.prices)),
        Some((now.generation, None))
    );
}

async fn summary_extras_are_the_newest_prices_and_the_history_in_one_read(f: Fixture) {
    let reader = f.reader();
    let asked = || vec![symbol("ABC"), symbol("XYZ"), symbol("QQQ")];
    assert_eq!(
        reader
            .summary_extras(&user("u1"), asked(), 3)
            .await
            .unwrap(),
        SummaryExtras::default(),
        "no prices and no history yet"
    );
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    f.store.submit(fetched("ABC", 1_000)).await.unwrap();
    f.now.store(T0 + 1_000, Ordering::SeqCst);
    f.store.submit(fetched("XYZ", 7)).await.unwrap();
    for key in 2..=5 {
        let quote = request(CommandName::Quote, Some("u1"), Some("ABC"), None);
        let fetched = QuoteUse::Fetched(fetch("ABC", 1_000 + key));
        f.store
            .submit(job("u1", Some(key), quote, Some(fetched)))
            .await
            .unwrap();
    }
    // Another user's rows are not u1's history.
    f.store.submit(add("u2", 1, "1.00")).await.unwrap();

    let extras = reader
        .summary_extras(&user("u1"), asked(), 3)
        .await
        .unwrap();
    assert_eq!(
        extras.prices,
        reader.latest_prices(asked()).await.unwrap(),
        "the same prices as latest_prices"
    );
    assert_eq!(extras.prices[&symbol("ABC")], point(T0 + 1_000, 1_005));
    assert_eq!(extras.prices.len(), 2, "QQQ was never fetched");
    assert_eq!(
        extras.history,
        reader.history(&user("u1"), 3).await.unwrap(),
        "the same history as history"
    );
    let numbers: Vec<i64> = extras.history.iter().map(|h| h.transaction_num).collect();
    assert_eq!(numbers, vec![5, 4, 3], "the newest first");
    let nothing_asked = reader
        .summary_extras(&user("u1"), Vec::new(), 10)
        .await
        .unwrap();
    assert!(nothing_asked.prices.is_empty());
    assert_eq!(
        nothing_asked.history.len(),
        5,
        "every line when fewer than the limit"
    );
}
