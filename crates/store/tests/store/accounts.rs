//! What the web pages keep: registrations (an account and its password in
//! one step), personal API tokens, the history in pages, and the version
//! that tells cached pages they are stale.

use std::sync::atomic::Ordering;
use store::{
    Done, Job, JobError, NewApiToken, QuoteFetch, Reads, Record, StoreError, Work, Writes,
};

use engine::{CommandName, Money, Symbol};

use crate::fixture::{
    Fixture, add, assert_valid_xml, bare, dump, let_a_buy_run_out, on_both_back_ends, user,
};

on_both_back_ends!(
    registering_creates_an_empty_account_with_its_password,
    a_taken_user_id_cannot_be_registered,
    a_password_is_given_or_changed,
    api_tokens_act_for_their_user_until_revoked,
    history_pages_go_back_in_time,
    marking_notifications_read_bumps_the_version,
);

fn register(who: &str, key: i64, password_hash: &str) -> Job {
    Job {
        user: Some(user(who)),
        idem_key: Some(key),
        work: Work::Register {
            password_hash: password_hash.to_owned(),
        },
    }
}

async fn version(f: &Fixture, who: &str) -> i64 {
    f.reader()
        .account(&user(who))
        .await
        .unwrap()
        .unwrap()
        .version
}

async fn registering_creates_an_empty_account_with_its_password(f: Fixture) {
    let done = f
        .store
        .submit(register("alice", 900, "phc-1"))
        .await
        .unwrap();
    assert_eq!(
        (&done.record, done.txn, done.duplicate),
        (&Record::Registered, 900, false)
    );
    let loaded = f.reader().account(&user("alice")).await.unwrap().unwrap();
    assert_eq!((loaded.account.cash(), loaded.version), (Money::ZERO, 1));
    assert_eq!(
        f.reader().password_hash(&user("alice")).await.unwrap(),
        Some("phc-1".to_owned())
    );

    // A double submit of the form answers the first outcome, and keeps the
    // first password.
    let again = f
        .store
        .submit(register("alice", 900, "phc-2"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!((again.seq, &again.record), (done.seq, &Record::Registered));
    assert_eq!(
        f.reader().password_hash(&user("alice")).await.unwrap(),
        Some("phc-1".to_owned())
    );

    // A registered trader is a trader like any other.
    let added = f.store.submit(add("alice", 1, "25.00")).await.unwrap();
    assert!(matches!(
        &added.record,
        Record::Command { outcome: Ok(_), .. }
    ));
    let history = f.reader().history(&user("alice"), 10).await.unwrap();
    let lines: Vec<&str> = history.iter().map(|h| h.command.as_str()).collect();
    assert_eq!(lines, ["ADD", "REGISTER"]);

    // The registration renders no entry of the course's format: the dump
    // holds the ADD and the DUMPLOG only, and validates.
    let dumplog = f
        .store
        .submit(bare("alice", 2, CommandName::DumpLog))
        .await
        .unwrap();
    let xml = dump(&f.reader(), Some("alice"), dumplog.seq.unwrap()).await;
    assert_eq!(xml.matches("<userCommand>").count(), 2, "{xml}");
    assert_valid_xml(&xml);
}

async fn a_taken_user_id_cannot_be_registered(f: Fixture) {
    let taken = |result: Result<Done, StoreError>, who: &str| match result {
        Err(StoreError::Job(JobError::UserTaken(u))) => assert_eq!(u, user(who)),
        other => panic!("{who} must be refused as taken: {other:?}"),
    };
    // Created by a first ADD, as a workload does.
    f.store.submit(add("bob", 1, "10.00")).await.unwrap();
    taken(f.store.submit(register("bob", 77, "phc")).await, "bob");
    // Even with the transaction number the ADD ran under.
    taken(f.store.submit(register("bob", 1, "phc")).await, "bob");
    assert_eq!(f.reader().password_hash(&user("bob")).await.unwrap(), None);
    assert_eq!(version(&f, "bob").await, 1, "a refusal changes nothing");

    // Registered once: a second registration, however numbered, is refused.
    f.store
        .submit(register("carol", 5, "phc-carol"))
        .await
        .unwrap();
    taken(
        f.store.submit(register("carol", 6, "phc-other")).await,
        "carol",
    );
    assert_eq!(
        f.reader().password_hash(&user("carol")).await.unwrap(),
        Some("phc-carol".to_owned())
    );
    let history = f.reader().history(&user("carol"), 10).await.unwrap();
    assert_eq!(history.len(), 1, "the refusal wrote no row: {history:?}");
}

async fn a_password_is_given_or_changed(f: Fixture) {
    // An account made by a first ADD has no password until it is given one.
    f.store.submit(add("dave", 1, "10.00")).await.unwrap();
    f.store
        .set_password(&user("dave"), "phc-first".into(), 5)
        .await
        .unwrap();
    assert_eq!(
        f.reader().password_hash(&user("dave")).await.unwrap(),
        Some("phc-first".to_owned())
    );
    // A registered trader's password is replaced, not added to.
    f.store
        .submit(register("erin", 9, "phc-old"))
        .await
        .unwrap();
    f.store
        .set_password(&user("erin"), "phc-new".into(), 6)
        .await
        .unwrap();
    assert_eq!(
        f.reader().password_hash(&user("erin")).await.unwrap(),
        Some("phc-new".to_owned())
    );
    assert_eq!(
        f.reader().password_hash(&user("dave")).await.unwrap(),
        Some("phc-first".to_owned()),
        "another user's password is untouched"
    );
}

fn token(who: &str, name: &str, byte: u8, created_ms: i64) -> NewApiToken {
    NewApiToken {
        user: user(who),
        name: name.to_owned(),
        hash: [byte; 32],
        created_ms,
    }
}

async fn api_tokens_act_for_their_user_until_revoked(f: Fixture) {
    let now = f.now.load(Ordering::SeqCst);
    let alice = f
        .store
        .create_api_token(token("alice", "laptop <script>", 1, now))
        .await
        .unwrap();
    let bob = f
        .store
        .create_api_token(token("bob", "ci", 2, now))
        .await
        .unwrap();
    assert_ne!(alice, bob);
    let reader = f.reader();
    assert_eq!(
        reader.api_token_user([1; 32]).await.unwrap(),
        Some(user("alice"))
    );
    assert_eq!(
        reader.api_token_user([2; 32]).await.unwrap(),
        Some(user("bob"))
    );
    assert_eq!(reader.api_token_user([3; 32]).await.unwrap(), None);

    let listed = reader.api_tokens(&user("alice")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].id,
            listed[0].name.as_str(),
            listed[0].created_ms,
            listed[0].revoked_ms
        ),
        (alice, "laptop <script>", now, None)
    );

    // Bob cannot revoke Alice's token.
    assert!(
        !f.store
            .revoke_api_token(&user("bob"), alice, now)
            .await
            .unwrap()
    );
    assert!(reader.api_token_user([1; 32]).await.unwrap().is_some());

    let later = now + 1_000;
    assert!(
        f.store
            .revoke_api_token(&user("alice"), alice, later)
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .revoke_api_token(&user("alice"), alice, later)
            .await
            .unwrap()
    );
    assert_eq!(reader.api_token_user([1; 32]).await.unwrap(), None);
    assert_eq!(
        reader.api_tokens(&user("alice")).await.unwrap()[0].revoked_ms,
        Some(later)
    );
    assert_eq!(
        reader.api_token_user([2; 32]).await.unwrap(),
        Some(user("bob"))
    );
}

async fn history_pages_go_back_in_time(f: Fixture) {
    for key in 1..=5 {
        f.store.submit(add("u1", key, "1.00")).await.unwrap();
    }
    // A quote fetch is in the user's log but not in their history.
    f.store
        .submit(Job {
            user: Some(user("u1")),
            idem_key: None,
            work: Work::Quote(QuoteFetch {
                symbol: Symbol::parse("ABC").unwrap(),
                price: Money::from_cents(100),
                user: "u1".into(),
                quote_server_time_ms: 0,
                cryptokey: "k".into(),
            }),
        })
        .await
        .unwrap();
    f.store.submit(add("u2", 1, "1.00")).await.unwrap();

    let reader = f.reader();
    let mut before = None;
    let mut pages = Vec::new();
    loop {
        let page = reader.history_page(&user("u1"), before, 2).await.unwrap();
        pages.push(
            page.items
                .iter()
                .map(|item| item.transaction_num)
                .collect::<Vec<_>>(),
        );
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [vec![5], vec![4, 3], vec![2, 1]],
        "the quote row takes a place"
    );
}

async fn marking_notifications_read_bumps_the_version(f: Fixture) {
    let_a_buy_run_out(&f, "ABC", 1234).await;
    f.store
        .submit(bare("u1", 3, CommandName::DisplaySummary))
        .await
        .unwrap();
    let before = version(&f, "u1").await;
    assert_eq!(
        f.store
            .mark_notifications_read(&user("u1"), None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        version(&f, "u1").await,
        before + 1,
        "the expiry note was read"
    );
    assert_eq!(
        f.store
            .mark_notifications_read(&user("u1"), None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(version(&f, "u1").await, before + 1, "nothing changed");
    // The next command goes on from the bumped version.
    f.store.submit(add("u1", 4, "1.00")).await.unwrap();
    assert_eq!(version(&f, "u1").await, before + 2);
}
