//! Reading the log back: the streamed XML dump (valid against the course
//! schema) and the pages an audit replays.

use std::collections::BTreeMap;
use store::{Reads, Writes};

use engine::{CommandName, UserId};

use crate::fixture::{
    Fixture, add, assert_valid_xml, dump, global_dumplog, on_both_back_ends, priced, user,
};

on_both_back_ends!(
    the_dump_is_valid_xml_for_everyone_and_for_one_user,
    a_large_dump_streams_in_chunks,
    log_pages_cover_the_log_exactly_once_in_order,
    accounts_pages_cover_every_account_in_user_id_order,
);

async fn the_dump_is_valid_xml_for_everyone_and_for_one_user(f: Fixture) {
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    f.store.submit(add("u1", 2, "-5")).await.unwrap();
    f.store.submit(add("u2", 3, "1.00")).await.unwrap();
    let sell = priced("u2", 4, CommandName::Sell, "X", "5.00", 100);
    f.store.submit(sell).await.unwrap();
    f.store.submit(global_dumplog(5)).await.unwrap();

    let everything = dump(&f.reader(), None, i64::MAX).await;
    assert_valid_xml(&everything);
    assert_eq!(everything.matches("<userCommand>").count(), 5);
    assert_eq!(everything.matches("<errorEvent>").count(), 2);
    assert!(everything.contains("<filename>./testLOG</filename>"));

    let one = dump(&f.reader(), Some("u1"), i64::MAX).await;
    assert_valid_xml(&one);
    assert_eq!(one.matches("<userCommand>").count(), 2);
    assert!(!one.contains("u2"));
}

async fn a_large_dump_streams_in_chunks(f: Fixture) {
    let tasks: Vec<_> = (0..20)
        .map(|u| {
            let store = f.store.clone();
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
    let reader = f.reader();
    let chunks: Vec<_> = futures::StreamExt::collect(reader.stream_log(None, i64::MAX)).await;
    assert!(chunks.len() > 5, "streamed in {} chunks", chunks.len());
    let xml: String = chunks
        .into_iter()
        .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(xml.matches("<userCommand>").count(), 3000);
    assert_valid_xml(&xml);
    // Rows after the bound are left out (row numbers may have gaps, so the
    // bound is the tenth row's).
    let tenth = reader.log_page(0, 10).await.unwrap().last().unwrap().seq;
    let xml = dump(&reader, None, tenth).await;
    assert_eq!(xml.matches("<userCommand>").count(), 10);
    assert_valid_xml(&xml);
}

async fn log_pages_cover_the_log_exactly_once_in_order(f: Fixture) {
    let tasks: Vec<_> = (0..5)
        .map(|u| {
            let store = f.store.clone();
            tokio::spawn(async move {
                for n in 1..=25 {
                    store
                        .submit(add(&format!("p{u}"), n, "1.00"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    f.store.submit(global_dumplog(1)).await.unwrap();
    let reader = f.reader();
    let everything = reader.log_page(0, 10_000).await.unwrap();
    assert_eq!(everything.len(), 126);
    assert!(everything.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        everything.last().unwrap().user.is_none(),
        "the global DUMPLOG"
    );

    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = reader.log_page(after, 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, everything);
    // Each user's rows are in the order they were submitted.
    for u in 0..5 {
        let who = user(&format!("p{u}"));
        let txns: Vec<i64> = everything
            .iter()
            .filter(|row| row.user.as_ref() == Some(&who))
            .map(|row| row.txn)
            .collect();
        assert_eq!(txns, (1..=25).collect::<Vec<_>>());
    }
}

async fn accounts_pages_cover_every_account_in_user_id_order(f: Fixture) {
    // Mixed case and punctuation: a locale-aware order would differ from
    // byte order here.
    let names = ["b", "B", "a", "_x", "A1", "a.b", "a-b", "Z", "0"];
    for (n, name) in names.iter().enumerate() {
        f.store
            .submit(add(name, 1, &format!("{}.00", n + 1)))
            .await
            .unwrap();
    }
    f.store.submit(add("a", 2, "1.00")).await.unwrap();
    let reader = f.reader();
    let mut paged: Vec<(UserId, i64, engine::Money)> = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = reader.accounts_page(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        paged.extend(
            page.into_iter()
                .map(|(user, loaded)| (user, loaded.version, loaded.account.cash())),
        );
    }
    let expected: BTreeMap<UserId, ()> = names.iter().map(|n| (user(n), ())).collect();
    let order: Vec<&UserId> = paged.iter().map(|(user, ..)| user).collect();
    assert_eq!(order, expected.keys().collect::<Vec<_>>(), "byte order");
    let a = paged.iter().find(|(u, ..)| u.as_str() == "a").unwrap();
    assert_eq!(
        (a.1, a.2),
        (2, engine::Money::from_cents(400)),
        "version and state as stored"
    );
}
