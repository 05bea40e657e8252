//! The SQLite store through its public API: group commit, idempotency,
//! durability across reopening, triggers, shutdown and the XML dump.

use std::process::Command as Process;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use engine::{CommandName, CommandRequest, Money, RejectCode, Reply, Symbol, UserId};
use futures::StreamExt;
use store::{
    Clock, Done, Job, JobError, QuoteFetch, QuoteUse, Record, SqliteOptions, SqliteStore,
    StoreError, Work,
};

const T0: i64 = 1_700_000_000_000;

struct Fixture {
    dir: tempfile::TempDir,
    now: Arc<AtomicI64>,
    store: SqliteStore,
}

fn open_in(dir: &std::path::Path, now: &Arc<AtomicI64>) -> Result<SqliteStore, StoreError> {
    let now = now.clone();
    let clock: Clock = Arc::new(move || now.load(Ordering::SeqCst));
    SqliteStore::open(SqliteOptions {
        data_dir: dir.to_path_buf(),
        server: "test-1".into(),
        clock,
        max_batch: 256,
    })
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0));
    let store = open_in(dir.path(), &now).unwrap();
    Fixture { dir, now, store }
}

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn request(
    name: CommandName,
    who: Option<&str>,
    symbol: Option<&str>,
    amount: Option<&str>,
) -> CommandRequest {
    CommandRequest::new(name, who, symbol, amount, None).unwrap()
}

fn cached(symbol: &str, cents: i64) -> Option<QuoteUse> {
    Some(QuoteUse::Cached {
        symbol: Symbol::parse(symbol).unwrap(),
        price: Money::from_cents(cents),
    })
}

fn job(who: &str, key: Option<i64>, request: CommandRequest, quote: Option<QuoteUse>) -> Job {
    Job {
        user: Some(user(who)),
        idem_key: key,
        work: Work::Command { request, quote },
    }
}

fn add(who: &str, key: i64, amount: &str) -> Job {
    job(
        who,
        Some(key),
        request(CommandName::Add, Some(who), None, Some(amount)),
        None,
    )
}

fn outcome(done: &Done) -> &Result<Reply, engine::Rejection> {
    match &done.record {
        Record::Command { outcome, .. } => outcome,
        other => panic!("not a command: {other:?}"),
    }
}

async fn cash(store: &SqliteStore, who: &str) -> Money {
    store
        .reader()
        .account(&user(who))
        .await
        .unwrap()
        .unwrap()
        .account
        .cash()
}

#[tokio::test]
async fn commands_change_accounts_and_are_logged() {
    let f = fixture();
    let done = f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    assert_eq!((done.seq, done.txn, done.duplicate), (Some(1), 1, false));
    let buy = job(
        "u1",
        Some(2),
        request(CommandName::Buy, Some("u1"), Some("ABC"), Some("50.00")),
        cached("ABC", 1234),
    );
    let done = f.store.submit(buy).await.unwrap();
    assert!(matches!(outcome(&done), Ok(Reply::Pending(order)) if order.shares == 4));
    let loaded = f
        .store
        .reader()
        .account(&user("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(
        loaded.account.cash(),
        Money::parse_decimal("50.64").unwrap()
    );

    let refused = f
        .store
        .submit(job(
            "u2",
            Some(3),
            request(CommandName::CommitBuy, Some("u2"), None, None),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome(&refused).as_ref().unwrap_err().code,
        RejectCode::UnknownUser
    );
    assert!(
        f.store
            .reader()
            .account(&user("u2"))
            .await
            .unwrap()
            .is_none(),
        "a refusal creates no user"
    );

    let history = f.store.reader().history(&user("u1"), 10).await.unwrap();
    let commands: Vec<&str> = history.iter().map(|h| h.command.as_str()).collect();
    assert_eq!(commands, ["BUY", "ADD"], "newest first");
}

#[tokio::test]
async fn a_transaction_number_runs_once_and_answers_its_first_outcome() {
    let f = fixture();
    let first = f.store.submit(add("u1", 7, "10.00")).await.unwrap();
    // The retry carries a different amount: it must not run at all.
    let again = f.store.submit(add("u1", 7, "99.00")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.seq, again.txn, &again.record),
        (first.seq, first.txn, &first.record)
    );
    assert_eq!(cash(&f.store, "u1").await, Money::from_cents(1000));
    // Another user may use the same number.
    assert!(
        !f.store
            .submit(add("u2", 7, "1.00"))
            .await
            .unwrap()
            .duplicate
    );
}

#[tokio::test]
async fn duplicates_inside_one_batch_run_once() {
    let f = fixture();
    let store = Arc::new(f.store);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.submit(add("u1", 1, "5.00")).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        fresh += usize::from(!task.await.unwrap().duplicate);
    }
    assert_eq!(fresh, 1);
    assert_eq!(cash(&store, "u1").await, Money::from_cents(500));
}

#[tokio::test]
async fn a_retried_fetch_is_still_logged() {
    let f = fixture();
    f.store.submit(add("u1", 1, "10.00")).await.unwrap();
    let fetch = QuoteUse::Fetched(QuoteFetch {
        symbol: Symbol::parse("ABC").unwrap(),
        price: Money::from_cents(100),
        user: "u1".into(),
        quote_server_time_ms: T0,
        cryptokey: "k".into(),
    });
    let quote = || {
        job(
            "u1",
            Some(2),
            request(CommandName::Quote, Some("u1"), Some("ABC"), None),
            Some(fetch.clone()),
        )
    };
    f.store.submit(quote()).await.unwrap();
    assert!(f.store.submit(quote()).await.unwrap().duplicate);
    let xml = dump(&f.store, None).await;
    assert_eq!(
        xml.matches("<quoteServer>").count(),
        2,
        "both fetches cost money and are logged"
    );
    assert_eq!(xml.matches("<userCommand>").count(), 2);
}

#[tokio::test]
async fn many_users_at_once_never_meet_a_locked_database() {
    let f = fixture();
    let store = Arc::new(f.store);
    let tasks: Vec<_> = (0..50)
        .map(|u| {
            let store = store.clone();
            tokio::spawn(async move {
                let who = format!("user{u}");
                for n in 1..=40 {
                    store.submit(add(&who, n, "1.00")).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for u in 0..50 {
        assert_eq!(
            cash(&store, &format!("user{u}")).await,
            Money::from_cents(4000)
        );
    }
}

#[tokio::test]
async fn everything_committed_survives_reopening() {
    let f = fixture();
    for n in 1..=5 {
        f.store.submit(add("u1", n, "1.00")).await.unwrap();
    }
    f.store.close().await;
    assert!(matches!(
        f.store.submit(add("u1", 9, "1.00")).await,
        Err(StoreError::Closed)
    ));
    drop(f.store);

    let store = open_in(f.dir.path(), &f.now).unwrap();
    assert_eq!(cash(&store, "u1").await, Money::from_cents(500));
    assert!(
        store.submit(add("u1", 3, "1.00")).await.unwrap().duplicate,
        "idempotency records persist"
    );
    let done = store.submit(add("u1", 6, "1.00")).await.unwrap();
    assert_eq!(done.seq, Some(6), "row numbers continue");
}

#[tokio::test]
async fn one_data_directory_serves_one_process() {
    let f = fixture();
    let second = open_in(f.dir.path(), &f.now);
    let Err(StoreError::Unavailable(message)) = second else {
        panic!("the second open must fail")
    };
    assert!(message.contains("another DayTrader process"), "{message}");
}

#[tokio::test]
async fn the_clock_expires_pending_orders() {
    let f = fixture();
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    let buy = job(
        "u1",
        Some(2),
        request(CommandName::Buy, Some("u1"), Some("A"), Some("50.00")),
        cached("A", 1000),
    );
    f.store.submit(buy).await.unwrap();
    f.now.fetch_add(engine::PENDING_TTL_MS, Ordering::SeqCst);
    let commit = f
        .store
        .submit(job(
            "u1",
            Some(3),
            request(CommandName::CommitBuy, Some("u1"), None, None),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome(&commit).as_ref().unwrap_err().code,
        RejectCode::NoPendingBuy
    );
    assert_eq!(cash(&f.store, "u1").await, Money::from_cents(10_000));
}

#[tokio::test]
async fn a_command_that_needs_a_price_must_bring_one() {
    let f = fixture();
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    let no_price = job(
        "u1",
        Some(2),
        request(CommandName::Quote, Some("u1"), Some("A"), None),
        None,
    );
    assert!(matches!(
        f.store.submit(no_price).await,
        Err(StoreError::Job(JobError::MissingPrice(CommandName::Quote)))
    ));
    let wrong = job(
        "u1",
        Some(2),
        request(CommandName::Quote, Some("u1"), Some("A"), None),
        cached("B", 5),
    );
    assert!(f.store.submit(wrong).await.is_err());
    // A refused amount needs no price: it is refused before any is used.
    let bad = job(
        "u1",
        Some(3),
        request(CommandName::Buy, Some("u1"), Some("A"), Some("-1")),
        None,
    );
    let done = f.store.submit(bad).await.unwrap();
    assert_eq!(
        outcome(&done).as_ref().unwrap_err().code,
        RejectCode::InvalidAmount
    );
}

#[tokio::test]
async fn armed_triggers_are_indexed_and_a_price_fires_them() {
    let f = fixture();
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    let amount = job(
        "u1",
        Some(2),
        request(
            CommandName::SetBuyAmount,
            Some("u1"),
            Some("ABC"),
            Some("50.00"),
        ),
        None,
    );
    f.store.submit(amount).await.unwrap();
    let arm = job(
        "u1",
        Some(3),
        request(
            CommandName::SetBuyTrigger,
            Some("u1"),
            Some("ABC"),
            Some("10.00"),
        ),
        cached("ABC", 2000),
    );
    f.store.submit(arm).await.unwrap();
    let abc = Symbol::parse("ABC").unwrap();
    let reader = f.store.reader();
    assert_eq!(reader.armed_symbols().await.unwrap(), [abc]);
    assert!(
        reader
            .users_with_firing_triggers(abc, Money::from_cents(1001))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reader
            .users_with_firing_triggers(abc, Money::from_cents(1000))
            .await
            .unwrap(),
        [user("u1")]
    );

    let price = |cents| Job {
        user: Some(user("u1")),
        idem_key: None,
        work: Work::Price {
            symbol: abc,
            price: Money::from_cents(cents),
        },
    };
    assert_eq!(
        f.store.submit(price(1500)).await.unwrap().seq,
        None,
        "nothing fired, nothing written"
    );
    let fired = f.store.submit(price(900)).await.unwrap();
    assert_eq!(fired.txn, 3, "recorded against the SET_BUY_TRIGGER");
    assert_eq!(
        reader
            .account(&user("u1"))
            .await
            .unwrap()
            .unwrap()
            .account
            .shares(abc),
        5
    );
    assert!(
        reader.armed_symbols().await.unwrap().is_empty(),
        "the index follows the account"
    );
}

async fn dump(store: &SqliteStore, who: Option<&str>) -> String {
    let upto = i64::MAX;
    let chunks: Vec<_> = store
        .reader()
        .stream_log(who.map(user), upto)
        .collect()
        .await;
    let bytes: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// Validates XML against the project's copy of the course schema. In CI a
/// missing xmllint is a failure; elsewhere the check is skipped loudly.
fn assert_valid_xml(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (doc, xsd) = (dir.path().join("dump.xml"), dir.path().join("logfile.xsd"));
    std::fs::write(&doc, xml).unwrap();
    std::fs::write(&xsd, store::LOG_SCHEMA_XSD).unwrap();
    match Process::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&doc)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "invalid XML: {}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("xmllint is required in CI: {e}")
        }
        Err(e) => eprintln!("SKIPPED schema validation, xmllint not found: {e}"),
    }
}

#[tokio::test]
async fn the_dump_is_valid_xml_for_everyone_and_for_one_user() {
    let f = fixture();
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    f.store.submit(add("u1", 2, "-5")).await.unwrap();
    f.store.submit(add("u2", 3, "1.00")).await.unwrap();
    let sell = job(
        "u2",
        Some(4),
        request(CommandName::Sell, Some("u2"), Some("X"), Some("5.00")),
        cached("X", 100),
    );
    f.store.submit(sell).await.unwrap();
    let global = Job {
        user: None,
        idem_key: Some(5),
        work: Work::Command {
            request: CommandRequest::new(CommandName::DumpLog, None, None, None, Some("./testLOG"))
                .unwrap(),
            quote: None,
        },
    };
    f.store.submit(global).await.unwrap();

    let everything = dump(&f.store, None).await;
    assert_valid_xml(&everything);
    assert_eq!(everything.matches("<userCommand>").count(), 5);
    assert_eq!(everything.matches("<errorEvent>").count(), 2);
    assert!(everything.contains("<filename>./testLOG</filename>"));

    let one = dump(&f.store, Some("u1")).await;
    assert_valid_xml(&one);
    assert_eq!(one.matches("<userCommand>").count(), 2);
    assert!(!one.contains("u2"));
}

#[tokio::test]
async fn a_large_dump_streams_in_chunks() {
    let f = fixture();
    let store = Arc::new(f.store);
    let tasks: Vec<_> = (0..20)
        .map(|u| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 1..=150 {
                    store
                        .submit(add(&format!("u{u}"), n, "1.00"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let chunks: Vec<_> = store.reader().stream_log(None, i64::MAX).collect().await;
    assert!(chunks.len() > 5, "streamed in {} chunks", chunks.len());
    let xml: String = chunks
        .into_iter()
        .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(xml.matches("<userCommand>").count(), 3000);
    assert_valid_xml(&xml);
    // Rows after the bound are left out.
    let first_ten: Vec<_> = store.reader().stream_log(None, 10).collect().await;
    let xml: String = first_ten
        .into_iter()
        .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(xml.matches("<userCommand>").count(), 10);
}
