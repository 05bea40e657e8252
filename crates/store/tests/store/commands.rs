//! Commands through the store: group commit, idempotency, durability
//! across reopening, the clock, triggers and shutdown.

use store::{Job, JobError, QuoteFetch, QuoteUse, Reads, StoreError, Work, Writes};

use engine::{CommandName, Money, RejectCode, Reply, Symbol};

use crate::fixture::{
    Fixture, T0, add, bare, cached, cash, dump, job, let_a_buy_run_out, on_both_back_ends, outcome,
    priced, request, user,
};

on_both_back_ends!(
    commands_change_accounts_and_are_logged,
    a_transaction_number_runs_once_and_answers_its_first_outcome,
    duplicates_inside_one_batch_run_once,
    a_retried_fetch_is_still_logged,
    many_users_at_once_never_meet_a_locked_database,
    everything_committed_survives_reopening,
    the_clock_expires_pending_orders,
    a_command_that_needs_a_price_must_bring_one,
    armed_triggers_are_indexed_and_a_price_fires_them,
    the_trigger_index_follows_every_change_of_the_account,
);

async fn commands_change_accounts_and_are_logged(f: Fixture) {
    let done = f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    // Row numbers increase; PostgreSQL may skip some (a batch with a new
    // user numbers its rows again once it holds that user's lock).
    assert!(done.seq.is_some_and(|seq| seq >= 1), "{done:?}");
    assert_eq!((done.txn, done.duplicate), (1, false));
    let buy = priced("u1", 2, CommandName::Buy, "ABC", "50.00", 1234);
    let done = f.store.submit(buy).await.unwrap();
    assert!(matches!(outcome(&done), Ok(Reply::Pending(order)) if order.shares == 4));
    let loaded = f.reader().account(&user("u1")).await.unwrap().unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(
        loaded.account.cash(),
        Money::parse_decimal("50.64").unwrap()
    );

    let refused = f
        .store
        .submit(bare("u2", 3, CommandName::CommitBuy))
        .await
        .unwrap();
    assert_eq!(
        outcome(&refused).as_ref().unwrap_err().code,
        RejectCode::UnknownUser
    );
    assert!(
        f.reader().account(&user("u2")).await.unwrap().is_none(),
        "a refusal creates no user"
    );

    let history = f.reader().history(&user("u1"), 10).await.unwrap();
    let commands: Vec<&str> = history.iter().map(|h| h.command.as_str()).collect();
    assert_eq!(commands, ["BUY", "ADD"], "newest first");
}

async fn a_transaction_number_runs_once_and_answers_its_first_outcome(f: Fixture) {
    let first = f.store.submit(add("u1", 7, "10.00")).await.unwrap();
    // The retry carries a different amount: it must not run at all.
    let again = f.store.submit(add("u1", 7, "99.00")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.seq, again.txn, &again.record),
        (first.seq, first.txn, &first.record)
    );
    assert_eq!(cash(&f.reader(), "u1").await, Money::from_cents(1000));
    // Another user may use the same number.
    assert!(
        !f.store
            .submit(add("u2", 7, "1.00"))
            .await
            .unwrap()
            .duplicate
    );
}

async fn duplicates_inside_one_batch_run_once(f: Fixture) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move { store.submit(add("u1", 1, "5.00")).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        fresh += usize::from(!task.await.unwrap().duplicate);
    }
    assert_eq!(fresh, 1);
    assert_eq!(cash(&f.reader(), "u1").await, Money::from_cents(500));
}

async fn a_retried_fetch_is_still_logged(f: Fixture) {
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
    let xml = dump(&f.reader(), None, i64::MAX).await;
    assert_eq!(
        xml.matches("<quoteServer>").count(),
        2,
        "both fetches cost money and are logged"
    );
    assert_eq!(xml.matches("<userCommand>").count(), 2);
}

async fn many_users_at_once_never_meet_a_locked_database(f: Fixture) {
    let tasks: Vec<_> = (0..50)
        .map(|u| {
            let store = f.store.clone();
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
            cash(&f.reader(), &format!("user{u}")).await,
            Money::from_cents(4000)
        );
    }
}

async fn everything_committed_survives_reopening(f: Fixture) {
    let mut last_seq = 0;
    for n in 1..=5 {
        last_seq = f
            .store
            .submit(add("u1", n, "1.00"))
            .await
            .unwrap()
            .seq
            .unwrap();
    }
    f.store.close().await;
    assert!(matches!(
        f.store.submit(add("u1", 9, "1.00")).await,
        Err(StoreError::Closed)
    ));

    let f = f.reopen().await;
    assert_eq!(cash(&f.reader(), "u1").await, Money::from_cents(500));
    assert!(
        f.store
            .submit(add("u1", 3, "1.00"))
            .await
            .unwrap()
            .duplicate,
        "idempotency records persist"
    );
    let done = f.store.submit(add("u1", 6, "1.00")).await.unwrap();
    assert!(done.seq.unwrap() > last_seq, "row numbers go on increasing");
}

async fn the_clock_expires_pending_orders(f: Fixture) {
    let_a_buy_run_out(&f, "A", 1000).await;
    let commit = f
        .store
        .submit(bare("u1", 3, CommandName::CommitBuy))
        .await
        .unwrap();
    assert_eq!(
        outcome(&commit).as_ref().unwrap_err().code,
        RejectCode::NoPendingBuy
    );
    assert_eq!(cash(&f.reader(), "u1").await, Money::from_cents(10_000));
}

async fn a_command_that_needs_a_price_must_bring_one(f: Fixture) {
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

async fn armed_triggers_are_indexed_and_a_price_fires_them(f: Fixture) {
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
    let arm = priced("u1", 3, CommandName::SetBuyTrigger, "ABC", "10.00", 2000);
    f.store.submit(arm).await.unwrap();
    let abc = Symbol::parse("ABC").unwrap();
    let reader = f.reader();
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

async fn the_trigger_index_follows_every_change_of_the_account(f: Fixture) {
    let (abc, xyz) = (Symbol::parse("ABC").unwrap(), Symbol::parse("XYZ").unwrap());
    let reader = f.reader();
    let firing = |symbol, cents| {
        let reader = reader.clone();
        async move {
            reader
                .users_with_firing_triggers(symbol, Money::from_cents(cents))
                .await
                .unwrap()
        }
    };
    f.store.submit(add("u1", 1, "1000.00")).await.unwrap();
    for (key, symbol) in [(2, "ABC"), (4, "XYZ")] {
        let reserve = priced("u1", key, CommandName::SetBuyAmount, symbol, "100.00", 2000);
        f.store.submit(reserve).await.unwrap();
        let arm = priced(
            "u1",
            key + 1,
            CommandName::SetBuyTrigger,
            symbol,
            "10.00",
            2000,
        );
        f.store.submit(arm).await.unwrap();
    }
    assert_eq!(reader.armed_symbols().await.unwrap(), [abc, xyz]);
    assert!(firing(abc, 1100).await.is_empty());

    // Re-armed at a new price: the index holds the new one.
    let rearm = priced("u1", 6, CommandName::SetBuyTrigger, "ABC", "12.00", 2000);
    f.store.submit(rearm).await.unwrap();
    assert_eq!(firing(abc, 1100).await, [user("u1")]);
    assert!(firing(abc, 1300).await.is_empty());

    // One trigger cancelled: the other stays.
    let cancel = job(
        "u1",
        Some(7),
        request(CommandName::CancelSetBuy, Some("u1"), Some("XYZ"), None),
        None,
    );
    f.store.submit(cancel).await.unwrap();
    assert_eq!(reader.armed_symbols().await.unwrap(), [abc]);
    assert!(firing(xyz, 100).await.is_empty());
    assert_eq!(firing(abc, 1200).await, [user("u1")]);
}
