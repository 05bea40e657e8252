//! Group commit on PostgreSQL, safe with many instances on one database.
//!
//! A few committer tasks share one queue; each takes every job waiting (up
//! to a bound) and runs them in one transaction, in four round trips:
//! BEGIN; lock the batch's accounts, read its idempotency records and take
//! its row numbers (one statement); apply ([`batch::apply`]); write every
//! table (one statement); COMMIT. Batches with users who have no account
//! yet take three more (see below). While one committer waits for its
//! COMMIT (the fsync), the others run their batches: more than one batch
//! is in flight per instance.
//!
//! Consistency between instances comes from row locks: a batch locks the
//! accounts of its users (`FOR UPDATE`, in user id order, so batches never
//! wait on each other in a cycle), and takes its row numbers only after, so
//! a user's rows are numbered in the order they ran. A user without an
//! account row has nothing to lock, so the batch takes a transaction-level
//! advisory lock on that user instead and looks again: whoever creates the
//! user, everyone else waits and then sees the account. What remains —
//! a global DUMPLOG sent to two instances, a deadlock PostgreSQL broke —
//! surfaces as a unique violation or deadlock error, and the whole batch
//! runs again.
//!
//! The fenced write skips all but one of those round trips for the users
//! this instance served last (which the balancer's hashing on the user
//! makes the usual case). The batch starts from the accounts the instance
//! kept when it last committed them ([`KnownAccounts`]), with no
//! idempotency records (every job a client's command with its number) and
//! with placeholder row numbers; one statement, in its own implicit
//! transaction, then updates each account only where it still holds the
//! version the batch started from, takes the row numbers once those row
//! locks are held (so a user's rows are still numbered in the order they
//! ran), writes everything else as [`WRITES`] does, and raises
//! `daytrader_fence` (aborting all of it) unless every account was still
//! at its version. A retried transaction number meets the unique index on
//! idempotency keys instead. Either way nothing was written, and the batch
//! runs again the long way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::UserId;
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::db::Db;
use super::known::KnownAccounts;
use super::lock_key;
use crate::batch::{self, Applied, Done, Job, LoadedAccount, PriorRow, Work};
use crate::codec::{decode_account, encode_account, parse_user, side_code, user_column};
use crate::prices::{PRICE_HISTORY_LIMIT, fetched_points};
use crate::record::Record;
use crate::write_health::WriteHealth;
use crate::{Clock, StoreError};

pub(crate) type Reply = oneshot::Sender<Result<Done, StoreError>>;
/// The queue every committer of a store takes batches from.
pub(crate) type Queue = Arc<Mutex<mpsc::Receiver<(Job, Reply)>>>;
/// The accounts the store's committers last committed, shared by them.
pub(crate) type Known = Arc<std::sync::Mutex<KnownAccounts>>;

/// How many times a batch runs before its jobs are told to retry later.
const MAX_ATTEMPTS: u32 = 10;
/// The advisory lock class (first of two 32-bit keys) of per-user locks.
const USER_LOCK_CLASS: i32 = 0x4454_5553; // "DTUS"
/// The SQLSTATE `daytrader_fence` raises (schema.rs, migration 7).
const STALE_ACCOUNT: &str = "DTSTA";

pub(crate) struct Committer {
    pub db: Db,
    pub server: String,
    pub clock: Clock,
    pub max_batch: usize,
    /// How the last batch ended, for readiness.
    pub health: WriteHealth,
    pub known: Known,
}

/// Why one attempt at a batch failed.
enum Failure {
    /// Another transaction got in the way; running the batch again is
    /// expected to succeed.
    Conflict(String),
    /// A fenced write found an account no longer at the version it started
    /// from; the batch runs again the long way.
    Stale,
    Database(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        // 40P01 deadlock detected, 40001 serialization failure, 23505
        // unique violation (two instances ran the same idempotency key).
        let code = match &error {
            sqlx::Error::Database(e) => e.code().map(|code| code.into_owned()),
            _ => None,
        };
        if code.as_deref() == Some(STALE_ACCOUNT) {
            Failure::Stale
        } else if matches!(code.as_deref(), Some("40P01" | "40001" | "23505")) {
            Failure::Conflict(error.to_string())
        } else {
            Failure::Database(error)
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl Committer {
    pub async fn run(self, queue: Queue) {
        let mut waiting = Vec::with_capacity(self.max_batch);
        loop {
            let taken = queue
                .lock()
                .await
                .recv_many(&mut waiting, self.max_batch)
                .await;
            if taken == 0 {
                return; // the store closed and the queue is drained
            }
            let (jobs, replies): (Vec<Job>, Vec<Reply>) = waiting.drain(..).unzip();
            let started = Instant::now();
            match self.commit(&jobs).await {
                Ok(applied) => {
                    self.health.succeeded();
                    metrics::histogram!("store_batch_size").record(jobs.len() as f64);
                    metrics::histogram!("store_commit_seconds")
                        .record(started.elapsed().as_secs_f64());
                    for (reply, result) in replies.into_iter().zip(applied.results) {
                        let _ = reply.send(result.map_err(StoreError::Job));
                    }
                }
                Err(error) => {
                    self.health.failed(&error);
                    tracing::error!(%error, jobs = jobs.len(), "a PostgreSQL batch failed and was rolled back");
                    metrics::counter!("store_batch_failures_total").increment(1);
                    for reply in replies {
                        let _ = reply.send(Err(error.for_another_caller()));
                    }
                }
            }
        }
    }

    /// Runs the batch, again after a conflict. An error means nothing of it
    /// was committed — or, when the connection broke during COMMIT, that
    /// the outcome is unknown; either way a retry is safe, since it carries
    /// the same idempotency keys.
    async fn commit(&self, jobs: &[Job]) -> Result<Applied, StoreError> {
        // Jobs queued before the database went away fail fast too.
        self.db.check()?;
        let mut conn = self
            .db
            .commit_pool()
            .acquire()
            .await
            .map_err(|e| self.db.failed(e))?;
        let users = batch::keys(jobs).0;
        // The fenced write is tried once, first; whatever stops it sends
        // the batch the long way.
        let kept = fenceable(jobs)
            .then(|| self.known().all_of(&users))
            .flatten();
        if let Some(kept) = kept {
            let outcome = self.attempt_fenced(&mut conn, jobs, kept).await;
            self.known().tried(matches!(outcome, Err(Failure::Stale)));
            match outcome {
                Ok(applied) => {
                    metrics::counter!("store_fenced_batches_total").increment(1);
                    let mut known = self.known();
                    known.wrote();
                    known.remember(&applied.accounts);
                    return Ok(applied);
                }
                Err(failure) => {
                    self.known().forget(&users);
                    metrics::counter!("store_fenced_batches_failed_total").increment(1);
                    match failure {
                        Failure::Stale | Failure::Conflict(_) => {}
                        Failure::Database(error) => return Err(self.db.failed(error)),
                        Failure::Store(error) => return Err(error),
                    }
                }
            }
        }
        let mut attempt = 1;
        loop {
            match self.attempt(&mut conn, jobs).await {
                Ok(applied) => {
                    self.known().remember(&applied.accounts);
                    return Ok(applied);
                }
                Err(Failure::Conflict(why)) if attempt < MAX_ATTEMPTS => {
                    metrics::counter!("store_batch_retries_total").increment(1);
                    tracing::debug!(%why, attempt, "a PostgreSQL batch met a concurrent one; running it again");
                    // Jitter, so that two instances that collided do not
                    // collide again in step.
                    let ceiling = 1u64 << attempt.min(6);
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=ceiling))).await;
                    attempt += 1;
                }
                Err(Failure::Conflict(why)) => {
                    return Err(StoreError::Unavailable(format!(
                        "the batch kept meeting concurrent ones ({MAX_ATTEMPTS} attempts): {why}"
                    )));
                }
                Err(Failure::Database(error)) => return Err(self.db.failed(error)),
                Err(Failure::Store(error)) => return Err(error),
                // Only the fenced write raises the fence; the long way
                // holds its locks.
                Err(Failure::Stale) => {
                    return Err(StoreError::Unavailable(
                        "the account fence was raised outside a fenced write".to_owned(),
                    ));
                }
            }
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, KnownAccounts> {
        self.known.lock().expect("not poisoned")
    }

    /// The batch from the accounts this instance kept, in one statement
    /// (the module's doc). Fails with [`Failure::Stale`] when one of them
    /// moved on, with a conflict when a job's number was already executed.
    async fn attempt_fenced(
        &self,
        conn: &mut PgConnection,
        jobs: &[Job],
        kept: HashMap<UserId, LoadedAccount>,
    ) -> Result<Applied, Failure> {
        let users = kept.len();
        let now_ms = (self.clock)();
        // Placeholders 1, 2, ...: the statement takes the real numbers.
        let mut placeholder = 0;
        let mut applied = batch::apply(jobs, kept, HashMap::new(), now_ms, &self.server, || {
            placeholder += 1;
            placeholder
        });
        // Every command of an existing user writes its account, so every
        // user is fenced by the update of their row; check rather than rely.
        if applied.accounts.len() != users || applied.accounts.iter().any(|w| w.is_new()) {
            return Err(Failure::Stale);
        }
        let arrays = WriteArrays::of(&applied, now_ms, &self.server);
        let mut seqs: Vec<i64> = arrays
            .bind(sqlx::query_scalar(arrays.statement(true)))
            .fetch_one(&mut *conn)
            .await?;
        if seqs.len() != applied.rows.len() {
            return Err(StoreError::Corrupt(format!(
                "a fenced write took {} row numbers for {} rows",
                seqs.len(),
                applied.rows.len()
            ))
            .into());
        }
        // One session's nextval calls increase; the sort only makes the
        // order independent of how the array was built.
        seqs.sort_unstable();
        let real = |placeholder: i64| seqs[(placeholder - 1) as usize];
        for row in &mut applied.rows {
            row.row.seq = real(row.row.seq);
        }
        for done in applied.results.iter_mut().flatten() {
            done.seq = done.seq.map(real);
        }
        Ok(applied)
    }

    /// One try at the batch in one transaction. Dropping the transaction
    /// on an error rolls it back.
    async fn attempt(&self, conn: &mut PgConnection, jobs: &[Job]) -> Result<Applied, Failure> {
        let (users, keys) = batch::keys(jobs);
        let mut tx = conn.begin().await?;

        let names: Vec<&str> = users.iter().map(UserId::as_str).collect();
        let Loaded {
            mut accounts,
            mut prior,
            mut seqs,
        } = lock_and_load(&mut tx, &names, &keys, jobs.len()).await?;
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|user| !accounts.contains_key(*user))
            .collect();
        if !missing.is_empty() {
            let mut lock_keys: Vec<i32> = missing.iter().map(|user| lock_key(user)).collect();
            // One order for every batch, so that they cannot wait in a cycle.
            lock_keys.sort_unstable();
            lock_keys.dedup();
            sqlx::query("SELECT pg_advisory_xact_lock($1, key) FROM unnest($2::int4[]) AS key")
                .bind(USER_LOCK_CLASS)
                .bind(&lock_keys)
                .execute(&mut *tx)
                .await?;
            // A new statement sees what committed while it waited: the
            // accounts, and the rows and row numbers of whoever created
            // them first (the numbers taken before the lock would come
            // before theirs; unused numbers are harmless gaps).
            lock_accounts(&mut tx, &missing, &mut accounts).await?;
            (prior, seqs) = load_prior_and_number_rows(&mut tx, &keys, jobs.len()).await?;
        }
        let mut seqs = seqs.into_iter();

        let now_ms = (self.clock)();
        let applied = batch::apply(jobs, accounts, prior, now_ms, &self.server, || {
            seqs.next()
                .expect("batch::apply writes at most one row per job")
        });
        if !write(&mut tx, &applied, now_ms, &self.server).await? {
            return Err(Failure::Conflict(
                "another instance created one of the batch's users".to_owned(),
            ));
        }
        tx.commit().await?;
        Ok(applied)
    }
}

/// Whether a batch can take the fenced write: every job a client's command
/// for a user, under its transaction number. Only those never need a row
/// number before the statement (a step without a number is logged under
/// one derived from its row's) nor an account that does not exist yet.
fn fenceable(jobs: &[Job]) -> bool {
    jobs.iter().all(|job| {
        job.user.is_some() && job.idem_key.is_some() && matches!(job.work, Work::Command { .. })
    })
}

/// What a batch starts from: its users' locked accounts, the already
/// executed keys among its jobs', and fresh row numbers.
struct Loaded {
    accounts: HashMap<UserId, LoadedAccount>,
    prior: HashMap<(String, i64), PriorRow>,
    seqs: Vec<i64>,
}

/// Locks the batch's existing accounts, reads its idempotency records and
/// takes `rows` row numbers, in one round trip. `UNION ALL` runs its parts
/// in order, so the numbers are taken once the locks are held: a user's
/// rows are numbered in the order they ran. A key another instance
/// committed while this statement waited for a lock is not seen (the
/// statement's snapshot is older); the unique index on idempotency keys
/// then refuses the second row, and the batch runs again.
const LOCK_AND_LOAD: &str = "
WITH locked AS MATERIALIZED (
    SELECT user_id, state, version FROM accounts WHERE user_id = ANY($1)
    ORDER BY user_id FOR UPDATE
)
SELECT 0 AS part, user_id, state, version,
       NULL::int8 AS idem_key, NULL::int8 AS seq, NULL::int8 AS ts_ms, NULL::int8 AS txn,
       NULL::bytea AS body
FROM locked
UNION ALL
SELECT 1, l.user_id, NULL, NULL, l.idem_key, l.seq, l.ts_ms, l.txn, l.body
FROM unnest($2::text[], $3::int8[]) AS k(user_id, idem_key)
JOIN log l ON l.user_id = k.user_id AND l.idem_key = k.idem_key
WHERE l.idem_key IS NOT NULL
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, nextval('log_seq'), NULL, NULL, NULL
FROM generate_series(1, $4::int8)";

async fn lock_and_load(
    conn: &mut PgConnection,
    users: &[&str],
    keys: &[(String, i64)],
    rows: usize,
) -> Result<Loaded, Failure> {
    let (key_users, idem): (Vec<&str>, Vec<i64>) =
        keys.iter().map(|(user, key)| (user.as_str(), *key)).unzip();
    let found = sqlx::query(LOCK_AND_LOAD)
        .bind(users)
        .bind(&key_users)
        .bind(&idem)
        .bind(rows as i64)
        .fetch_all(&mut *conn)
        .await?;
    let mut loaded = Loaded {
        accounts: HashMap::with_capacity(users.len()),
        prior: HashMap::new(),
        seqs: Vec::with_capacity(rows),
    };
    for row in found {
        match row.try_get::<i32, _>("part")? {
            0 => {
                let user = parse_user(row.try_get("user_id")?)?;
                let account = decode_account(&user, row.try_get("state")?)?;
                let version = row.try_get("version")?;
                loaded
                    .accounts
                    .insert(user, LoadedAccount { account, version });
            }
            1 => {
                let (key, earlier) = prior_row(&row)?;
                loaded.prior.insert(key, earlier);
            }
            _ => loaded.seqs.push(row.try_get("seq")?),
        }
    }
    loaded.seqs.sort_unstable();
    Ok(loaded)
}

/// An already executed row, under its (user, key).
fn prior_row(row: &sqlx::postgres::PgRow) -> Result<((String, i64), PriorRow), Failure> {
    let seq: i64 = row.try_get("seq")?;
    let record = Record::decode(row.try_get("body")?)
        .map_err(|e| StoreError::Corrupt(format!("log row {seq}: {e}")))?;
    let earlier = PriorRow {
        seq,
        ts_ms: row.try_get("ts_ms")?,
        txn: row.try_get("txn")?,
        record,
    };
    Ok(((row.try_get("user_id")?, row.try_get("idem_key")?), earlier))
}

/// Locks the existing accounts among `users` and loads them into `into`.
async fn lock_accounts(
    conn: &mut PgConnection,
    users: &[&str],
    into: &mut HashMap<UserId, LoadedAccount>,
) -> Result<(), Failure> {
    if users.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT user_id, state, version FROM accounts WHERE user_id = ANY($1)
         ORDER BY user_id FOR UPDATE",
    )
    .bind(users)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let user = parse_user(row.try_get("user_id")?)?;
        let account = decode_account(&user, row.try_get("state")?)?;
        let version = row.try_get("version")?;
        into.insert(user, LoadedAccount { account, version });
    }
    Ok(())
}

/// The already executed (user, key) pairs among `keys`, and `rows` fresh
/// row numbers (increasing), in one round trip: allocation rows come back
/// with a NULL user.
async fn load_prior_and_number_rows(
    conn: &mut PgConnection,
    keys: &[(String, i64)],
    rows: usize,
) -> Result<(HashMap<(String, i64), PriorRow>, Vec<i64>), Failure> {
    let (users, idem): (Vec<&str>, Vec<i64>) =
        keys.iter().map(|(user, key)| (user.as_str(), *key)).unzip();
    let found = sqlx::query(
        "SELECT l.user_id, l.idem_key, l.seq, l.ts_ms, l.txn, l.body
         FROM unnest($1::text[], $2::int8[]) AS k(user_id, idem_key)
         JOIN log l ON l.user_id = k.user_id AND l.idem_key = k.idem_key
         WHERE l.idem_key IS NOT NULL
         UNION ALL
         SELECT NULL, NULL, nextval('log_seq'), NULL, NULL, NULL
         FROM generate_series(1, $3::int8)",
    )
    .bind(&users)
    .bind(&idem)
    .bind(rows as i64)
    .fetch_all(&mut *conn)
    .await?;
    let mut prior = HashMap::new();
    let mut seqs = Vec::with_capacity(rows);
    for row in found {
        if row.try_get::<Option<&str>, _>("user_id")?.is_none() {
            seqs.push(row.try_get("seq")?);
            continue;
        }
        let (key, earlier) = prior_row(&row)?;
        prior.insert(key, earlier);
    }
    // One session's nextval calls increase; the sort only makes the order
    // independent of how rows come back.
    seqs.sort_unstable();
    Ok((prior, seqs))
}

/// The arrays bound to one statement, one per column, with their
/// placeholders (`$n::type`) numbered in the order they are bound. The SQL
/// names each table's set by what it holds and never a number, so adding
/// a table (or a column) cannot shift another's parameters.
#[derive(Default)]
struct Placeholders {
    bound: usize,
}

impl Placeholders {
    /// The placeholders of the next `types.len()` parameters, comma
    /// separated.
    fn next(&mut self, types: &[&str]) -> String {
        let mut out = Vec::with_capacity(types.len());
        for ty in types {
            self.bound += 1;
            out.push(format!("${}::{ty}", self.bound));
        }
        out.join(", ")
    }
}

type PgQuery<'q, O> = sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

/// Columns of new `log` rows. Sorted by idempotency key, so that two
/// batches inserting the same keys wait on each other in one order rather
/// than deadlock.
struct LogArrays<'a> {
    seq: Vec<i64>,
    ts_ms: Vec<i64>,
    user: Vec<&'a str>,
    txn: Vec<i64>,
    idem_key: Vec<Option<i64>>,
    body: Vec<Vec<u8>>,
}

impl<'a> LogArrays<'a> {
    const TYPES: &'static [&'static str] =
        &["int8[]", "int8[]", "text[]", "int8[]", "int8[]", "bytea[]"];

    fn of(applied: &'a Applied) -> LogArrays<'a> {
        let mut rows: Vec<_> = applied.rows.iter().collect();
        rows.sort_by_key(|&r| (user_column(r.row.user.as_ref()), r.idem_key));
        LogArrays {
            seq: rows.iter().map(|r| r.row.seq).collect(),
            ts_ms: rows.iter().map(|r| r.row.ts_ms).collect(),
            user: rows
                .iter()
                .map(|r| user_column(r.row.user.as_ref()))
                .collect(),
            txn: rows.iter().map(|r| r.row.txn).collect(),
            idem_key: rows.iter().map(|r| r.idem_key).collect(),
            body: rows.iter().map(|r| r.row.record.encode()).collect(),
        }
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        query
            .bind(&self.seq)
            .bind(&self.ts_ms)
            .bind(&self.user)
            .bind(&self.txn)
            .bind(&self.idem_key)
            .bind(&self.body)
    }
}

/// The `accounts` columns of some account writes.
struct AccountArrays<'a> {
    user: Vec<&'a str>,
    state: Vec<Vec<u8>>,
    version: Vec<i64>,
    expires_ms: Vec<Option<i64>>,
}

impl<'a> AccountArrays<'a> {
    const TYPES: &'static [&'static str] = &["text[]", "bytea[]", "int8[]", "int8[]"];

    fn of(writes: &[&'a batch::AccountWrite]) -> AccountArrays<'a> {
        AccountArrays {
            user: writes.iter().map(|w| w.user.as_str()).collect(),
            state: writes.iter().map(|w| encode_account(&w.account)).collect(),
            version: writes.iter().map(|w| w.version).collect(),
            expires_ms: writes.iter().map(|w| w.account.next_expiry_ms()).collect(),
        }
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        query
            .bind(&self.user)
            .bind(&self.state)
            .bind(&self.version)
            .bind(&self.expires_ms)
    }
}

/// The armed triggers of the users whose triggers changed: `users` lists
/// them (their old rows not in the new set go), the other arrays are the
/// new set.
struct TriggerArrays<'a> {
    users: Vec<&'a str>,
    symbol: Vec<&'a str>,
    side: Vec<i16>,
    user: Vec<&'a str>,
    price: Vec<i64>,
}

impl<'a> TriggerArrays<'a> {
    const TYPES: &'static [&'static str] = &["text[]", "text[]", "int2[]", "text[]", "int8[]"];

    fn of(applied: &'a Applied) -> TriggerArrays<'a> {
        let rearmed: Vec<_> = applied
            .accounts
            .iter()
            .filter_map(|write| Some((write.user.as_str(), write.triggers.as_ref()?)))
            .collect();
        let armed: Vec<_> = rearmed
            .iter()
            .flat_map(|(user, triggers)| triggers.iter().map(move |t| (*user, t)))
            .collect();
        TriggerArrays {
            users: rearmed.iter().map(|(user, _)| *user).collect(),
            symbol: armed.iter().map(|(_, t)| t.symbol.as_str()).collect(),
            side: armed.iter().map(|(_, t)| side_code(t.side)).collect(),
            user: armed.iter().map(|(user, _)| *user).collect(),
            price: armed.iter().map(|(_, t)| t.trigger_price.cents()).collect(),
        }
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        query
            .bind(&self.users)
            .bind(&self.symbol)
            .bind(&self.side)
            .bind(&self.user)
            .bind(&self.price)
    }
}

/// New notifications, in the order the events happened (unnest keeps array
/// order, so their ids follow it).
struct NotificationArrays<'a> {
    user: Vec<&'a str>,
    created_ms: Vec<i64>,
    kind: Vec<&'a str>,
    message: Vec<&'a str>,
    txn: Vec<i64>,
}

impl<'a> NotificationArrays<'a> {
    const TYPES: &'static [&'static str] = &["text[]", "int8[]", "text[]", "text[]", "int8[]"];

    fn of(applied: &'a Applied) -> NotificationArrays<'a> {
        let notes = &applied.notifications;
        NotificationArrays {
            user: notes.iter().map(|n| n.user.as_str()).collect(),
            created_ms: notes.iter().map(|n| n.created_ms).collect(),
            kind: notes.iter().map(|n| n.kind.as_str()).collect(),
            message: notes.iter().map(|n| n.message.as_str()).collect(),
            txn: notes.iter().map(|n| n.txn).collect(),
        }
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        query
            .bind(&self.user)
            .bind(&self.created_ms)
            .bind(&self.kind)
            .bind(&self.message)
            .bind(&self.txn)
    }
}

/// The credentials of registrations.
struct CredentialArrays<'a> {
    user: Vec<&'a str>,
    hash: Vec<&'a str>,
    created_ms: Vec<i64>,
}

impl<'a> CredentialArrays<'a> {
    const TYPES: &'static [&'static str] = &["text[]", "text[]", "int8[]"];

    fn of(applied: &'a Applied) -> CredentialArrays<'a> {
        let credentials = &applied.credentials;
        CredentialArrays {
            user: credentials.iter().map(|c| c.user.as_str()).collect(),
            hash: credentials
                .iter()
                .map(|c| c.password_hash.as_str())
                .collect(),
            created_ms: credentials.iter().map(|c| c.created_ms).collect(),
        }
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        query
            .bind(&self.user)
            .bind(&self.hash)
            .bind(&self.created_ms)
    }
}

/// The prices the batch fetched (prices.rs); their time is the batch's,
/// as their log rows'.
struct PriceArrays {
    symbol: Vec<String>,
    seq: Vec<i64>,
    price: Vec<i64>,
}

impl PriceArrays {
    const TYPES: &'static [&'static str] = &["text[]", "int8[]", "int8[]"];

    fn of(applied: &Applied) -> PriceArrays {
        let points = fetched_points(applied);
        PriceArrays {
            symbol: points.iter().map(|p| p.symbol.to_string()).collect(),
            seq: points.iter().map(|p| p.seq).collect(),
            price: points.iter().map(|p| p.point.price.cents()).collect(),
        }
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        query.bind(&self.symbol).bind(&self.seq).bind(&self.price)
    }
}

/// Everything a batch writes, as the arrays of [`WRITES`], bound in the
/// order the statement's placeholders were numbered.
struct WriteArrays<'a> {
    now_ms: i64,
    server: &'a str,
    log: LogArrays<'a>,
    changed: AccountArrays<'a>,
    created: AccountArrays<'a>,
    triggers: TriggerArrays<'a>,
    notifications: NotificationArrays<'a>,
    credentials: CredentialArrays<'a>,
    prices: PriceArrays,
}

impl<'a> WriteArrays<'a> {
    fn of(applied: &'a Applied, now_ms: i64, server: &'a str) -> WriteArrays<'a> {
        let (created, changed): (Vec<_>, Vec<_>) =
            applied.accounts.iter().partition(|write| write.is_new());
        WriteArrays {
            now_ms,
            server,
            log: LogArrays::of(applied),
            changed: AccountArrays::of(&changed),
            created: AccountArrays::of(&created),
            triggers: TriggerArrays::of(applied),
            notifications: NotificationArrays::of(applied),
            credentials: CredentialArrays::of(applied),
            prices: PriceArrays::of(applied),
        }
    }

    /// The tables besides the log and the changed accounts this batch
    /// writes.
    fn parts(&self) -> Parts {
        Parts {
            created: !self.created.user.is_empty(),
            triggers: !self.triggers.users.is_empty(),
            notifications: !self.notifications.user.is_empty(),
            credentials: !self.credentials.user.is_empty(),
            prices: !self.prices.symbol.is_empty(),
        }
    }

    /// The write statement for these arrays: [`FENCED_WRITES`] or
    /// [`WRITES`], with the CTEs of their parts.
    fn statement(&self, fenced: bool) -> &'static str {
        let statements = if fenced { &FENCED_WRITES } else { &WRITES };
        &statements[self.parts().index()]
    }

    fn bind<'q, O>(&'q self, query: PgQuery<'q, O>) -> PgQuery<'q, O> {
        let query = query.bind(self.now_ms).bind(self.server);
        let query = self.log.bind(query);
        let query = self.changed.bind(query);
        let query = self.created.bind(query);
        let query = self.triggers.bind(query);
        let query = self.notifications.bind(query);
        let query = self.credentials.bind(query);
        self.prices.bind(query)
    }
}

/// Writes what a batch produced in one statement: each table's rows go in
/// as arrays through `unnest`, one data-modifying CTE per table. Returns
/// how many of the batch's new accounts were inserted.
///
/// One statement per combination of [`Parts`]: a table the batch does not
/// write has no CTE at all (its arrays are still bound, and unused). Every
/// CTE costs PostgreSQL its executor setup on each run, empty or not, and
/// with a command or two per batch (few users, or half load) that setup
/// had been most of the statement's CPU.
///
/// The armed triggers of a user whose triggers changed are replaced
/// without touching a row twice (which one statement may not): rows not in
/// the new set are deleted, rows in it are upserted.
static WRITES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..Parts::COMBINATIONS)
        .map(|index| write_statement(false, Parts::of_index(index)))
        .collect()
});

/// [`WRITES`] for a batch that locked nothing beforehand (the module's
/// doc): an account is updated only from the version the batch started
/// from, the log's and the price history's `seq` arrays hold placeholders
/// (1, 2, ...) for the row numbers the statement takes once every account
/// row is locked, and it returns those numbers in placeholder order, or
/// raises the fence. Data-modifying CTEs the final query does not read run
/// after it, so a raised fence stops them before they start.
static FENCED_WRITES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..Parts::COMBINATIONS)
        .map(|index| write_statement(true, Parts::of_index(index)))
        .collect()
});

/// Which tables a batch writes besides the log and the accounts it
/// changed (those two are in every write statement: almost every batch
/// writes both, and the fence reads the accounts' update).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Parts {
    /// New accounts.
    created: bool,
    /// Armed triggers of users whose triggers changed.
    triggers: bool,
    notifications: bool,
    /// Registrations' credentials.
    credentials: bool,
    /// Fetched prices: the price history, its trimming and the price
    /// generation.
    prices: bool,
}

impl Parts {
    const COMBINATIONS: usize = 1 << 5;

    fn index(self) -> usize {
        [
            self.created,
            self.triggers,
            self.notifications,
            self.credentials,
            self.prices,
        ]
        .iter()
        .enumerate()
        .map(|(bit, &present)| usize::from(present) << bit)
        .sum()
    }

    fn of_index(index: usize) -> Parts {
        let has = |bit: usize| index & (1 << bit) != 0;
        Parts {
            created: has(0),
            triggers: has(1),
            notifications: has(2),
            credentials: has(3),
            prices: has(4),
        }
    }
}

fn write_statement(fenced: bool, parts: Parts) -> String {
    // In the order of WriteArrays::bind, whether or not a part is written.
    let mut p = Placeholders::default();
    let now_ms = p.next(&["int8"]);
    let server = p.next(&["text"]);
    let log = p.next(LogArrays::TYPES);
    let changed = p.next(AccountArrays::TYPES);
    let created = p.next(AccountArrays::TYPES);
    let rearmed_users = p.next(&TriggerArrays::TYPES[..1]);
    let armed = p.next(&TriggerArrays::TYPES[1..]);
    let notifications = p.next(NotificationArrays::TYPES);
    let credentials = p.next(CredentialArrays::TYPES);
    let prices = p.next(PriceArrays::TYPES);
    let keep = PRICE_HISTORY_LIMIT;
    // The first of each set's arrays: the log's seq, the changed accounts'
    // users.
    let first = |set: &str| set.split(", ").next().expect("a set").to_owned();
    let (log_seqs, changed_users) = (first(&log), first(&changed));
    // In the fenced write, the log's and the prices' seq are placeholders
    // for the numbers `numbered` takes.
    let seq_of = |alias: &str| match fenced {
        true => "n.seq".to_owned(),
        false => format!("{alias}.seq"),
    };
    let numbered_by = |alias: &str| match fenced {
        true => format!("JOIN numbered AS n ON n.ord = {alias}.seq"),
        false => String::new(),
    };
    let held = if fenced {
        "AND a.version = c.version - 1\n    RETURNING 1"
    } else {
        ""
    };

    let mut ctes = vec![format!(
        "changed AS (
    UPDATE accounts AS a SET state = c.state, version = c.version, updated_ms = {now_ms},
                             expires_ms = c.expires_ms
    FROM unnest({changed}) AS c(user_id, state, version, expires_ms)
    WHERE a.user_id = c.user_id
    {held}
)"
    )];
    if fenced {
        ctes.push(format!(
            "numbered AS MATERIALIZED (
    -- Taken only once the update above has locked every account row (its
    -- count is needed first), and only if it found each at its version.
    SELECT ord, nextval('log_seq') AS seq
    FROM generate_series(1, cardinality({log_seqs})) AS ord
    WHERE (SELECT count(*) FROM changed) = cardinality({changed_users})
)"
        ));
    }
    let (log_seq, log_numbered) = (seq_of("r"), numbered_by("r"));
    ctes.push(format!(
        "logged AS (
    INSERT INTO log (seq, ts_ms, server, user_id, txn, idem_key, body)
    SELECT {log_seq}, r.ts_ms, {server}, r.user_id, r.txn, r.idem_key, r.body
    FROM unnest({log}) AS r(seq, ts_ms, user_id, txn, idem_key, body)
    {log_numbered}
)"
    ));
    if parts.created {
        ctes.push(format!(
            "created AS (
    INSERT INTO accounts (user_id, state, version, updated_ms, expires_ms)
    SELECT user_id, state, version, {now_ms}, expires_ms
    FROM unnest({created}) AS n(user_id, state, version, expires_ms)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING 1
)"
        ));
    }
    if parts.triggers {
        ctes.push(format!(
            "armed AS (
    SELECT * FROM unnest({armed}) AS t(symbol, side, user_id, trigger_price)
), disarmed AS (
    DELETE FROM armed_triggers AS old
    WHERE old.user_id = ANY({rearmed_users})
      AND NOT EXISTS (SELECT 1 FROM armed
                      WHERE armed.symbol = old.symbol AND armed.side = old.side
                        AND armed.user_id = old.user_id)
), rearmed AS (
    INSERT INTO armed_triggers (symbol, side, user_id, trigger_price)
    SELECT symbol, side, user_id, trigger_price FROM armed
    ON CONFLICT (symbol, side, user_id) DO UPDATE SET trigger_price = excluded.trigger_price
)"
        ));
    }
    if parts.notifications {
        ctes.push(format!(
            "notified AS (
    INSERT INTO notifications (user_id, created_ms, kind, message, txn)
    SELECT * FROM unnest({notifications})
)"
        ));
    }
    if parts.credentials {
        ctes.push(format!(
            "registered AS (
    INSERT INTO credentials (user_id, password_hash, created_ms)
    SELECT * FROM unnest({credentials})
)"
        ));
    }
    if parts.prices {
        let (price_seq, price_numbered) = (seq_of("p"), numbered_by("p"));
        ctes.push(format!(
            "priced AS (
    INSERT INTO price_history (symbol, at_ms, seq, price)
    SELECT p.symbol, {now_ms}, {price_seq}, p.price FROM unnest({prices}) AS p(symbol, seq, price)
    {price_numbered}
), pruned AS (
    -- Sees the table as it was before this statement: keeps the newest
    -- points that, with the new ones, make the limit.
    DELETE FROM price_history AS h
    USING (SELECT symbol, count(*) AS fresh FROM unnest({prices}) AS p(symbol, seq, price)
           GROUP BY symbol) AS f
    WHERE h.symbol = f.symbol
      AND (h.at_ms, h.seq) <= (SELECT o.at_ms, o.seq FROM price_history AS o
                               WHERE o.symbol = f.symbol
                               ORDER BY o.at_ms DESC, o.seq DESC
                               OFFSET GREATEST({keep} - f.fresh, 0) LIMIT 1)
), generation AS (
    -- A batch that adds price points counts in its instance's price
    -- generation (prices.rs, COUNT_PRICE_GENERATION).
    INSERT INTO price_generations (server, n) VALUES ({server}, 1)
    ON CONFLICT (server) DO UPDATE SET n = price_generations.n + 1
)"
        ));
    }
    let result = match (fenced, parts.created) {
        (true, _) => format!(
            "SELECT ARRAY(SELECT seq FROM numbered ORDER BY ord) AS seqs
WHERE daytrader_fence((SELECT count(*) FROM changed) = cardinality({changed_users}))"
        ),
        (false, true) => "SELECT count(*) AS created FROM created".to_owned(),
        (false, false) => "SELECT 0::int8 AS created".to_owned(),
    };
    format!("\nWITH {}\n{result}", ctes.join(", "))
}

/// Writes what a batch produced; `false` when a user this batch created
/// already has an account (another instance created it after this batch
/// looked), in which case the batch must run again.
async fn write(
    conn: &mut PgConnection,
    applied: &Applied,
    now_ms: i64,
    server: &str,
) -> Result<bool, Failure> {
    // Each registration also created its account: if another instance
    // created that user first, the count of created accounts tells, and
    // the batch runs again (and is then refused).
    let arrays = WriteArrays::of(applied, now_ms, server);
    let inserted: i64 = arrays
        .bind(sqlx::query_scalar(arrays.statement(false)))
        .fetch_one(&mut *conn)
        .await?;
    let created = applied.accounts.iter().filter(|w| w.is_new()).count();
    Ok(inserted == created as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every array is bound whatever the statement uses, so the
    /// placeholders are numbered the same in all of them.
    fn bound() -> usize {
        2 + LogArrays::TYPES.len()
            + 2 * AccountArrays::TYPES.len()
            + TriggerArrays::TYPES.len()
            + NotificationArrays::TYPES.len()
            + CredentialArrays::TYPES.len()
            + PriceArrays::TYPES.len()
    }

    #[test]
    fn the_write_with_every_part_numbers_every_bound_array_once_in_order() {
        let all = Parts {
            created: true,
            triggers: true,
            notifications: true,
            credentials: true,
            prices: true,
        };
        for fenced in [false, true] {
            let statement = write_statement(fenced, all);
            for n in 1..=bound() {
                assert!(statement.contains(&format!("${n}::")), "${n} is missing");
            }
            assert!(!statement.contains(&format!("${}::", bound() + 1)));
        }
    }

    #[test]
    fn each_combination_of_parts_has_its_statement() {
        for index in 0..Parts::COMBINATIONS {
            assert_eq!(Parts::of_index(index).index(), index);
        }
        let only_prices = Parts {
            prices: true,
            ..Parts::default()
        };
        let statement = &WRITES[only_prices.index()];
        for table in [
            "INSERT INTO log",
            "UPDATE accounts",
            "INSERT INTO price_history",
        ] {
            assert!(statement.contains(table), "{table} is missing");
        }
        for table in [
            "INSERT INTO accounts",
            "armed_triggers",
            "notifications",
            "credentials",
        ] {
            assert!(!statement.contains(table), "{table} is written");
        }
        assert!(FENCED_WRITES[0].contains("daytrader_fence"));
        assert!(!FENCED_WRITES[0].contains("price_history"));
    }
}
