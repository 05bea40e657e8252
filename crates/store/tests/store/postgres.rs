//! What only the cluster back end promises: several instances on one
//! database stay consistent, a store waits for its database instead of
//! failing, it never hangs on a busy pool, and one instance leads at a time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use store::{Done, Job, PgStore, Reads, Record, StoreError, Writes};

use engine::{CommandName, Money, Symbol, UserId};
use sqlx::Connection;

use crate::fixture::{
    PgDatabase, T0, add, bare, global_dumplog, outcome, priced, user, wait_until_ready,
};

/// A fresh database, or `None` when the test is skipped.
async fn database() -> Option<PgDatabase> {
    let database = PgDatabase::reserve().await?;
    database.create().await;
    Some(database)
}

fn clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(T0))
}

/// Two instances on one database, both ready.
async fn two_instances(database: &PgDatabase) -> [Arc<PgStore>; 2] {
    let now = clock();
    let stores = [
        Arc::new(database.store(&now, "instance-a", |_| {})),
        Arc::new(database.store(&now, "instance-b", |_| {})),
    ];
    for store in &stores {
        wait_until_ready(store).await;
    }
    stores
}

/// Submits `a` to the first instance and `b` to the second at once.
async fn at_once(stores: &[Arc<PgStore>; 2], a: Job, b: Job) -> [Done; 2] {
    let first = tokio::spawn({
        let store = stores[0].clone();
        async move { store.submit(a).await }
    });
    let second = tokio::spawn({
        let store = stores[1].clone();
        async move { store.submit(b).await }
    });
    [
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    ]
}

/// Fails the test if `future` has not finished within a generous bound: a
/// guard against hanging, not a claim about speed.
async fn without_hanging<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("hung instead of answering")
}

/// Evaluates `check` (which may `.await`) until it holds, failing after a
/// generous bound.
macro_rules! eventually {
    ($what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if $check {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never: {}", $what);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

async fn whole_log(store: &PgStore) -> Vec<store::LogRow> {
    store.reader().log_page(0, 1_000_000).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_serialize_each_users_commands() {
    let Some(database) = database().await else {
        return;
    };
    let stores = two_instances(&database).await;
    const USERS: usize = 8;
    const ROUNDS: i64 = 10;
    // Every user gets the same rounds from both instances at once. Each
    // round of one instance: ADD 100, BUY 10 shares at 1.00, COMMIT_BUY,
    // SELL 5 shares at 1.00, COMMIT_SELL; every one of them is accepted
    // however the two instances interleave, and each round nets +95.00 and
    // +5 shares.
    let mut tasks = Vec::new();
    for u in 0..USERS {
        for (i, store) in stores.iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let who = format!("trader{u}");
                for round in 0..ROUNDS {
                    let key = i as i64 * 1_000 + round * 5;
                    let jobs = [
                        add(&who, key + 1, "100.00"),
                        priced(&who, key + 2, CommandName::Buy, "ABC", "10.00", 100),
                        bare(&who, key + 3, CommandName::CommitBuy),
                        priced(&who, key + 4, CommandName::Sell, "ABC", "5.00", 100),
                        bare(&who, key + 5, CommandName::CommitSell),
                    ];
                    for job in jobs {
                        let done = store.submit(job).await.unwrap();
                        assert!(!done.duplicate);
                        assert!(outcome(&done).is_ok(), "{who}: {:?}", done.record);
                        let Record::Command {
                            balance: Some(balance),
                            ..
                        } = &done.record
                        else {
                            panic!("no balance: {:?}", done.record)
                        };
                        assert!(
                            balance.cash >= Money::ZERO && balance.reserved_cash >= Money::ZERO
                        );
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    let reader = stores[0].reader();
    let abc = Symbol::parse("ABC").unwrap();
    let log = whole_log(&stores[1]).await;
    for u in 0..USERS {
        let who = user(&format!("trader{u}"));
        let loaded = reader.account(&who).await.unwrap().unwrap();
        let account = &loaded.account;
        assert_eq!(
            account.cash(),
            Money::from_cents(2 * ROUNDS * 9_500),
            "{who}"
        );
        assert_eq!(account.shares(abc), 2 * ROUNDS * 5, "{who}");
        assert_eq!(
            (account.reserved_cash(), account.reserved_shares(abc)),
            (Money::ZERO, 0)
        );
        assert_eq!(loaded.version, 2 * ROUNDS * 5, "every command counted once");
        // Each instance's commands appear in the log in the order it sent
        // them: row numbers follow the row locks.
        let rows: Vec<i64> = log
            .iter()
            .filter(|row| row.user.as_ref() == Some(&who))
            .map(|row| row.txn)
            .collect();
        assert_eq!(rows.len() as i64, 2 * ROUNDS * 5);
        for instance in 0..2 {
            let mine: Vec<i64> = rows
                .iter()
                .copied()
                .filter(|txn| txn / 1_000 == instance)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{who}: {mine:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transaction_number_runs_once_across_instances() {
    let Some(database) = database().await else {
        return;
    };
    let stores = two_instances(&database).await;
    stores[0].submit(add("old", 1, "10.00")).await.unwrap();
    for round in 0..10 {
        let new_user = format!("new{round}");
        let cases = [
            // A user with an account row to lock.
            (
                add("old", 100 + round, "1.00"),
                add("old", 100 + round, "1.00"),
            ),
            // A user who does not exist yet: nothing to lock.
            (add(&new_user, 1, "1.00"), add(&new_user, 1, "1.00")),
            // The global DUMPLOG: no user at all.
            (global_dumplog(100 + round), global_dumplog(100 + round)),
        ];
        for (a, b) in cases {
            let [first, second] = at_once(&stores, a, b).await;
            assert_eq!(
                usize::from(first.duplicate) + usize::from(second.duplicate),
                1,
                "exactly one ran: {first:?} {second:?}"
            );
            assert_eq!((first.seq, first.txn), (second.seq, second.txn));
            assert_eq!(first.record, second.record);
        }
        let loaded = stores[1]
            .reader()
            .account(&user(&new_user))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (loaded.account.cash(), loaded.version),
            (Money::from_cents(100), 1)
        );
    }
    let old = stores[1]
        .reader()
        .account(&user("old"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.account.cash(), Money::from_cents(2_000));

    let mut rows: HashMap<(Option<UserId>, i64), usize> = HashMap::new();
    for row in whole_log(&stores[0]).await {
        *rows.entry((row.user, row.txn)).or_default() += 1;
    }
    assert_eq!(rows.len(), 1 + 10 * 3);
    assert!(rows.values().all(|&count| count == 1), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_creating_one_user_both_apply() {
    let Some(database) = database().await else {
        return;
    };
    let stores = two_instances(&database).await;
    for round in 0..10 {
        let who = format!("fresh{round}");
        let [first, second] = at_once(&stores, add(&who, 1, "10.00"), add(&who, 2, "20.00")).await;
        assert!(!first.duplicate && !second.duplicate);
        assert!(outcome(&first).is_ok() && outcome(&second).is_ok());
        let loaded = stores[0]
            .reader()
            .account(&user(&who))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (loaded.account.cash(), loaded.version),
            (Money::from_cents(3_000), 2),
            "{who}: both ADDs applied, one after the other"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_waits_for_a_concurrent_creation_of_its_user() {
    let Some(database) = database().await else {
        return;
    };
    let stores = two_instances(&database).await;
    // Whichever runs first, the log must replay: a COMMIT_BUY recorded as
    // "unknown user" comes before the ADD that created the user, and one
    // recorded as "no pending buy" after it.
    for round in 0..10 {
        let who = format!("late{round}");
        at_once(
            &stores,
            add(&who, 1, "10.00"),
            bare(&who, 2, CommandName::CommitBuy),
        )
        .await;
    }
    for round in 0..10 {
        let who = user(&format!("late{round}"));
        let log = whole_log(&stores[0]).await;
        let mine: Vec<_> = log
            .iter()
            .filter(|r| r.user.as_ref() == Some(&who))
            .collect();
        assert_eq!(mine.len(), 2);
        let add_first = mine[0].command_name() == Some(CommandName::Add);
        let Record::Command { outcome, .. } = &mine.iter().find(|r| r.txn == 2).unwrap().record
        else {
            unreachable!()
        };
        let code = outcome.as_ref().unwrap_err().code;
        let expected = if add_first {
            engine::RejectCode::NoPendingBuy
        } else {
            engine::RejectCode::UnknownUser
        };
        assert_eq!(code, expected, "{who}: {mine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let Some(database) = database().await else {
        return;
    };
    let now = clock();
    let stores: Vec<PgStore> = (0..3)
        .map(|i| database.store(&now, &format!("starter-{i}"), |_| {}))
        .collect();
    for store in &stores {
        wait_until_ready(store).await;
    }
    let mut conn = database.connect().await;
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(!versions.is_empty());
    assert_eq!(versions, (1..=versions.len() as i32).collect::<Vec<_>>());
    for (i, store) in stores.iter().enumerate() {
        store
            .submit(add(&format!("u{i}"), 1, "1.00"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_waits_for_its_database() {
    let Some(database) = PgDatabase::reserve().await else {
        return;
    };
    // The database does not exist yet.
    let store = database.store(&clock(), "early", |options| {
        options.acquire_timeout = Duration::from_millis(500);
    });
    assert!(!store.is_ready());
    let refused = without_hanging(store.submit(add("u1", 1, "1.00"))).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    let ping = without_hanging(store.reader().ping()).await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
    assert!(!store.is_ready());

    database.create().await;
    wait_until_ready(&store).await;
    store.reader().ping().await.unwrap();
    let done = store.submit(add("u1", 1, "1.00")).await.unwrap();
    assert!(outcome(&done).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_unavailable_instead_of_hanging() {
    let Some(database) = database().await else {
        return;
    };
    let store = Arc::new(database.store(&clock(), "small", |options| {
        options.pool_size = 1;
        options.acquire_timeout = Duration::from_millis(500);
    }));
    wait_until_ready(&store).await;
    store.submit(add("u1", 1, "1.00")).await.unwrap();

    // Another session locks u1's account; the next job of u1 then holds the
    // pool's only connection while it waits for that lock.
    let mut holder = database.connect().await;
    let mut lock = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM accounts WHERE user_id = 'u1' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let blocked = tokio::spawn({
        let store = store.clone();
        async move { store.submit(add("u1", 2, "1.00")).await }
    });
    let mut watcher = database.connect().await;
    eventually!("the job waits for the lock", {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        waiting > 0
    });

    // Reads have connections of their own: a blocked batch holds up none.
    let read = without_hanging(store.reader().account(&user("u2"))).await;
    assert!(read.is_ok(), "{read:?}");
    // The other committer finds no connection left within the timeout.
    let write = without_hanging(store.submit(add("u2", 1, "1.00"))).await;
    assert!(
        matches!(write, Err(StoreError::Unavailable(_))),
        "{write:?}"
    );

    lock.rollback().await.unwrap();
    let done = without_hanging(blocked).await.unwrap().unwrap();
    assert!(outcome(&done).is_ok(), "the waiting job went through");
    wait_until_ready(&store).await;
    store.submit(add("u2", 1, "1.00")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_comes_back_after_losing_its_connections() {
    let Some(database) = database().await else {
        return;
    };
    let store = database.store(&clock(), "survivor", |_| {});
    wait_until_ready(&store).await;
    store.submit(add("u1", 1, "1.00")).await.unwrap();
    let mut admin = database.connect().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    // Until the store notices and reconnects, a command may be refused as
    // unavailable (never hang, never fail otherwise); then they run again.
    let mut key = 1;
    eventually!("commands run again", {
        key += 1;
        match without_hanging(store.submit(add("u1", key, "1.00"))).await {
            Ok(done) => outcome(&done).is_ok(),
            Err(StoreError::Unavailable(_)) => false,
            Err(other) => panic!("{other:?}"),
        }
    });
    assert!(store.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_leads_at_a_time() {
    let Some(database) = database().await else {
        return;
    };
    let [a, b] = two_instances(&database).await;
    const ROLE: &str = "trigger-engine";
    let mut lease = a
        .try_lead(ROLE)
        .await
        .unwrap()
        .expect("the first takes the lead");
    assert!(b.try_lead(ROLE).await.unwrap().is_none());
    assert!(
        a.try_lead(ROLE).await.unwrap().is_none(),
        "not even twice by one instance"
    );
    assert!(lease.still_held().await);
    let other = b.try_lead("another-role").await.unwrap();
    assert!(other.is_some(), "roles are independent");

    lease.release().await;
    let mut lease = b.try_lead(ROLE).await.unwrap().expect("released, so free");

    // The leader's session dies (as when its process does): the lock goes
    // with it, the leader learns it lost the lead, and another takes it.
    let mut admin = database.connect().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND objsubid = 2 AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    assert!(!lease.still_held().await);
    assert!(!lease.still_held().await, "and stays lost");
    let mut taken;
    eventually!("another instance takes the lead", {
        taken = a.try_lead(ROLE).await.unwrap();
        taken.is_some()
    });
    assert!(taken.as_mut().unwrap().still_held().await);

    // A lease dropped without release (a crashed leader) frees it too.
    drop(taken);
    eventually!(
        "the lead is free once its holder is gone",
        b.try_lead(ROLE).await.unwrap().is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_from_kept_accounts_is_fenced_by_their_versions() {
    let Some(database) = database().await else {
        return;
    };
    let [a, b] = two_instances(&database).await;
    let who = "kept";
    // The first command creates the account the long way; the next ones on
    // the same instance start from the account it kept.
    for key in 1..=5 {
        a.submit(add(who, key, "1.00")).await.unwrap();
    }
    assert_eq!(
        a.fenced_batches(),
        4,
        "the four after the first were fenced"
    );

    // Another instance moves the account on: the kept copy is stale, the
    // fenced write is refused and the batch runs again the long way.
    b.submit(add(who, 6, "10.00")).await.unwrap();
    let done = a.submit(add(who, 7, "100.00")).await.unwrap();
    assert_eq!(a.fenced_batches(), 4, "the stale copy wrote nothing");
    let Record::Command {
        balance: Some(balance),
        ..
    } = &done.record
    else {
        panic!("no balance: {:?}", done.record)
    };
    assert_eq!(balance.cash, Money::from_cents(11_500), "every ADD counted");

    // A retried number meets the idempotency index instead, and is
    // answered its first outcome with its real row number.
    let again = a.submit(add(who, 7, "100.00")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!((again.seq, again.txn), (done.seq, done.txn));
    // That failure forgot the account: the next command loads it again,
    // the one after is fenced once more.
    a.submit(add(who, 8, "1.00")).await.unwrap();
    let later = a.submit(add(who, 9, "1.00")).await.unwrap();
    assert_eq!(a.fenced_batches(), 5);

    // Rows carry the numbers the statement took, in the order they ran.
    let log = whole_log(&b).await;
    let mine: Vec<_> = log
        .iter()
        .filter(|row| row.user.as_ref() == Some(&user(who)))
        .collect();
    assert_eq!(
        mine.iter().map(|row| row.txn).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(mine.last().unwrap().seq, later.seq.unwrap());
    let loaded = b.reader().account(&user(who)).await.unwrap().unwrap();
    assert_eq!(
        (loaded.account.cash(), loaded.version),
        (Money::from_cents(11_700), 9)
    );
}
