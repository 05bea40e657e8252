//! Active expiry: the store finds the accounts with pending orders due
//! through the index of each account's next expiry, and an expiry job
//! releases them in a step stamped at the moment they ran out.

use std::sync::atomic::Ordering;
use store::{Job, NotificationKind, Reads, Record, Work, Writes};

use engine::{CommandName, Money, PENDING_TTL_MS, UserId};

use crate::fixture::{
    Fixture, T0, add, assert_valid_xml, bare, cash, dump, on_both_back_ends, priced, user,
};

on_both_back_ends!(due_accounts_are_found_and_expired_at_the_moment_they_ran_out,);

fn expire(who: &str) -> Job {
    Job {
        user: Some(user(who)),
        idem_key: None,
        work: Work::Expire,
    }
}

async fn due(f: &Fixture, now_ms: i64, limit: usize) -> Vec<UserId> {
    f.reader()
        .users_with_orders_due(now_ms, limit)
        .await
        .unwrap()
}

async fn due_accounts_are_found_and_expired_at_the_moment_they_ran_out(f: Fixture) {
    // At T0 a BUY of "buyer"; at T0 + 1 s a SELL of "seller"; "idle" has
    // nothing pending.
    f.store.submit(add("buyer", 1, "100.00")).await.unwrap();
    let buy = priced("buyer", 2, CommandName::Buy, "ABC", "50.00", 1000);
    f.store.submit(buy).await.unwrap();
    f.store.submit(add("idle", 1, "100.00")).await.unwrap();
    f.store.submit(add("seller", 1, "100.00")).await.unwrap();
    let own = priced("seller", 2, CommandName::Buy, "XYZ", "30.00", 1000);
    f.store.submit(own).await.unwrap();
    let commit = bare("seller", 3, CommandName::CommitBuy);
    f.store.submit(commit).await.unwrap();
    f.now.fetch_add(1_000, Ordering::SeqCst);
    let sell = priced("seller", 4, CommandName::Sell, "XYZ", "20.00", 1000);
    f.store.submit(sell).await.unwrap();

    let (buy_due, sell_due) = (T0 + PENDING_TTL_MS, T0 + 1_000 + PENDING_TTL_MS);
    assert!(due(&f, buy_due - 1, 10).await.is_empty());
    assert_eq!(due(&f, buy_due, 10).await, [user("buyer")]);
    assert_eq!(
        due(&f, sell_due, 10).await,
        [user("buyer"), user("seller")],
        "the longest due first"
    );
    assert_eq!(due(&f, sell_due, 1).await, [user("buyer")], "bounded");

    // The task runs late, 2.5 s after both ran out.
    f.now.store(sell_due + 2_500, Ordering::SeqCst);
    for (who, due_ms, txn) in [("buyer", buy_due, 2), ("seller", sell_due, 4)] {
        let done = f.store.submit(expire(who)).await.unwrap();
        assert!(done.seq.is_some(), "{who}: {done:?}");
        assert_eq!((done.ts_ms, done.txn), (due_ms, txn), "{who}");
        assert!(matches!(done.record, Record::Expired { .. }));
        let notes = f
            .reader()
            .notifications(&user(who), None, 10)
            .await
            .unwrap();
        assert_eq!(notes.len(), 1, "{who}: {notes:?}");
        assert_eq!(
            (notes[0].kind, notes[0].created_ms, notes[0].txn),
            (NotificationKind::OrderExpired, due_ms, txn),
            "{who}"
        );
    }
    let reader = f.reader();
    assert_eq!(cash(&reader, "buyer").await, Money::from_cents(10_000));
    let seller = reader.account(&user("seller")).await.unwrap().unwrap();
    assert_eq!(
        seller.account.shares(engine::Symbol::parse("XYZ").unwrap()),
        3,
        "the shares came back"
    );
    assert!(
        due(&f, i64::MAX, 10).await.is_empty(),
        "nothing is left due"
    );

    // Again (a command of the user's got there first): nothing is written.
    let again = f.store.submit(expire("buyer")).await.unwrap();
    assert_eq!(again.seq, None);
    let history = reader.history(&user("buyer"), 10).await.unwrap();
    assert_eq!(history.len(), 3, "ADD, BUY and one expiry: {history:?}");
    assert_eq!(
        (history[0].command.as_str(), history[0].at_ms),
        ("EXPIRY", buy_due)
    );

    // The audit entries carry the expiry's time, and the log replays.
    let xml = dump(&reader, Some("buyer"), i64::MAX).await;
    assert_valid_xml(&xml);
    let expiry = xml
        .split("<systemEvent>")
        .nth(1)
        .expect("the expiry's system event");
    assert!(
        expiry.contains(&format!("<timestamp>{buy_due}</timestamp>")),
        "{xml}"
    );
    let report = store::audit::audit(&reader).await.unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);

    // The next expiry is stored with the account: it survives a restart.
    let buy = priced("buyer", 5, CommandName::Buy, "ABC", "10.00", 1000);
    f.store.submit(buy).await.unwrap();
    let f = f.reopen().await;
    let later = f.now.load(Ordering::SeqCst) + PENDING_TTL_MS;
    assert_eq!(due(&f, later, 10).await, [user("buyer")]);
}
