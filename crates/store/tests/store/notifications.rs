//! Notifications: written with the step that caused them, paged newest
//! first, marked read only by their own user.

use std::sync::atomic::Ordering;
use store::{Job, Notification, NotificationKind, Reads, Work, Writes};

use engine::{CommandName, Money, Symbol};

use crate::fixture::{Fixture, add, bare, let_a_buy_run_out, on_both_back_ends, priced, user};

on_both_back_ends!(
    a_buy_trigger_fired_by_a_price_notifies_its_user,
    a_trigger_that_cannot_buy_a_share_says_so,
    an_expired_order_notifies_its_user,
    notifications_page_newest_first_and_only_their_user_marks_them_read,
);

fn price(who: &str, symbol: &str, cents: i64) -> Job {
    Job {
        user: Some(user(who)),
        idem_key: None,
        work: Work::Price {
            symbol: Symbol::parse(symbol).unwrap(),
            price: Money::from_cents(cents),
        },
    }
}

/// Reserves `amount` for a buy trigger on ABC at 10.00, armed while ABC is
/// at 20.00 (so it does not fire yet).
async fn arm_buy_trigger(f: &Fixture, who: &str, amount: &str) {
    f.store.submit(add(who, 1, "100.00")).await.unwrap();
    let reserve = priced(who, 2, CommandName::SetBuyAmount, "ABC", amount, 2000);
    f.store.submit(reserve).await.unwrap();
    let arm = priced(who, 3, CommandName::SetBuyTrigger, "ABC", "10.00", 2000);
    f.store.submit(arm).await.unwrap();
}

async fn all(f: &Fixture, who: &str) -> Vec<Notification> {
    f.reader()
        .notifications(&user(who), None, 1_000)
        .await
        .unwrap()
}

async fn a_buy_trigger_fired_by_a_price_notifies_its_user(f: Fixture) {
    arm_buy_trigger(&f, "u1", "50.00").await;
    f.store.submit(add("u2", 1, "1.00")).await.unwrap();
    assert!(all(&f, "u1").await.is_empty(), "arming notifies nothing");

    f.store.submit(price("u1", "ABC", 900)).await.unwrap();
    let notes = all(&f, "u1").await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert_eq!(note.kind, NotificationKind::TriggerExecuted);
    assert_eq!(
        note.message,
        "Your buy trigger on ABC bought 5 shares at $9.00 for $45.00."
    );
    assert_eq!(
        (note.user.as_str(), note.txn, note.created_ms, note.read),
        ("u1", 3, f.now.load(Ordering::SeqCst), false),
        "recorded against the SET_BUY_TRIGGER"
    );
    assert_eq!(
        f.reader().unread_notifications(&user("u1")).await.unwrap(),
        1
    );
    assert!(all(&f, "u2").await.is_empty());
    assert_eq!(
        f.reader().unread_notifications(&user("u2")).await.unwrap(),
        0
    );

    // A price that fires nothing (the trigger is gone) tells nothing.
    f.store.submit(price("u1", "ABC", 800)).await.unwrap();
    assert_eq!(all(&f, "u1").await.len(), 1);
}

async fn a_trigger_that_cannot_buy_a_share_says_so(f: Fixture) {
    arm_buy_trigger(&f, "u1", "5.00").await;
    f.store.submit(price("u1", "ABC", 900)).await.unwrap();
    let notes = all(&f, "u1").await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, NotificationKind::TriggerUnfilled);
    assert_eq!(
        notes[0].message,
        "Your buy trigger on ABC fired at $9.00, but its $5.00 could not buy a single share; \
         the $5.00 is back in your cash."
    );
}

async fn an_expired_order_notifies_its_user(f: Fixture) {
    let_a_buy_run_out(&f, "ABC", 1234).await;
    // Any later step of the user releases the order, and says so once.
    f.store
        .submit(bare("u1", 3, CommandName::DisplaySummary))
        .await
        .unwrap();
    f.store
        .submit(bare("u1", 4, CommandName::DisplaySummary))
        .await
        .unwrap();
    let notes = all(&f, "u1").await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, NotificationKind::OrderExpired);
    assert_eq!(notes[0].txn, 2, "the BUY's transaction");
    assert_eq!(
        notes[0].message,
        "Your buy of 4 shares of ABC at $12.34 was not committed within 60 seconds and expired; \
         $49.36 is back in your cash."
    );
}

async fn notifications_page_newest_first_and_only_their_user_marks_them_read(f: Fixture) {
    // Five pending buys that expire together: five notifications in one
    // step; and one for another user.
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    for key in 2..=6 {
        let buy = priced("u1", key, CommandName::Buy, "ABC", "10.00", 100);
        f.store.submit(buy).await.unwrap();
    }
    f.store.submit(add("u2", 1, "100.00")).await.unwrap();
    let buy = priced("u2", 2, CommandName::Buy, "ABC", "10.00", 100);
    f.store.submit(buy).await.unwrap();
    f.now.fetch_add(engine::PENDING_TTL_MS, Ordering::SeqCst);
    for who in ["u1", "u2"] {
        f.store
            .submit(bare(who, 9, CommandName::DisplaySummary))
            .await
            .unwrap();
    }

    let everything = all(&f, "u1").await;
    assert_eq!(everything.len(), 5);
    assert!(
        everything.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = f
            .reader()
            .notifications(&user("u1"), before, 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, everything);

    let ids: Vec<i64> = everything.iter().map(|n| n.id).collect();
    let (u1, u2) = (user("u1"), user("u2"));
    assert_eq!(
        f.store
            .mark_notifications_read(&u2, Some(ids.clone()))
            .await
            .unwrap(),
        0,
        "u2 cannot mark u1's notifications"
    );
    assert_eq!(f.store.mark_notifications_read(&u2, None).await.unwrap(), 1);
    assert_eq!(f.reader().unread_notifications(&u1).await.unwrap(), 5);

    let some = vec![ids[0], ids[3], ids[0], -1];
    assert_eq!(
        f.store
            .mark_notifications_read(&u1, Some(some))
            .await
            .unwrap(),
        2
    );
    assert_eq!(f.reader().unread_notifications(&u1).await.unwrap(), 3);
    let read: Vec<bool> = all(&f, "u1").await.iter().map(|n| n.read).collect();
    assert_eq!(read, [true, false, false, true, false]);
    assert_eq!(f.store.mark_notifications_read(&u1, None).await.unwrap(), 3);
    assert_eq!(f.store.mark_notifications_read(&u1, None).await.unwrap(), 0);
    assert_eq!(f.reader().unread_notifications(&u1).await.unwrap(), 0);
}
