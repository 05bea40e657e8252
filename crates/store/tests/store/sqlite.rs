//! What only the embedded back end promises.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use store::StoreError;

use crate::fixture::{T0, open_sqlite};

#[tokio::test]
async fn one_data_directory_serves_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0));
    let _first = open_sqlite(dir.path(), &now).unwrap();
    let second = open_sqlite(dir.path(), &now);
    let Err(StoreError::Unavailable(message)) = second else {
        panic!("the second open must fail")
    };
    assert!(message.contains("another DayTrader process"), "{message}");
}

/// The store's own reader takes the newest prices from what its writer
/// committed; a tool's reader beside it, and the store opened again, read
/// them from the file: all three agree, a clock that went back included.
#[tokio::test]
async fn the_newest_prices_in_memory_are_the_files() {
    use std::sync::atomic::Ordering;

    use engine::Symbol;
    use store::{Job, QuoteFetch, Reads, SqliteReader, Work, Writes};

    let fetched = |name: &str, cents: i64| Job {
        user: None,
        idem_key: None,
        work: Work::Quote(QuoteFetch {
            symbol: Symbol::parse(name).unwrap(),
            price: engine::Money::from_cents(cents),
            user: "u1".into(),
            quote_server_time_ms: 0,
            cryptokey: "k".into(),
        }),
    };
    let asked = || {
        ["ABC", "XYZ", "QQQ"]
            .map(|n| Symbol::parse(n).unwrap())
            .to_vec()
    };
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0));
    let store = open_sqlite(dir.path(), &now).unwrap();
    let reader = store.reader().clone();
    // Known to have no point, then given one.
    assert!(reader.latest_prices(asked()).await.unwrap().is_empty());
    store.submit(fetched("ABC", 100)).await.unwrap();
    let seen = reader.latest_prices(asked()).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    now.store(T0 + 1_000, Ordering::SeqCst);
    store.submit(fetched("ABC", 110)).await.unwrap();
    store.submit(fetched("XYZ", 7)).await.unwrap();
    // The clock went back: the newer time stays the newest.
    now.store(T0 + 500, Ordering::SeqCst);
    store.submit(fetched("ABC", 90)).await.unwrap();

    let in_memory = reader.latest_prices(asked()).await.unwrap();
    assert_eq!(in_memory[&Symbol::parse("ABC").unwrap()].price.cents(), 110);
    let tool = SqliteReader::open(dir.path()).unwrap();
    assert_eq!(tool.latest_prices(asked()).await.unwrap(), in_memory);
    let extras = reader
        .summary_extras(&engine::UserId::parse("u1").unwrap(), asked(), 10)
        .await
        .unwrap();
    assert_eq!(extras.prices, in_memory);
    store.close().await;
    drop(store);
    let again = open_sqlite(dir.path(), &now).unwrap();
    assert_eq!(
        again.reader().latest_prices(asked()).await.unwrap(),
        in_memory
    );
}
