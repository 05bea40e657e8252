//! Group commit on PostgreSQL, safe with many instances on one database.
//!
//! A few committer tasks share one queue; each takes every job waiting (up
//! to a bound) and runs them in one transaction, in as few round trips as it
//! can: BEGIN; lock the batch's accounts; read its idempotency records and
//! take its row numbers (one query); apply ([`batch::apply`]); write every
//! table (one statement); COMMIT. Batches with users who have no account
//! yet take two more (see below).
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::UserId;
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::db::Db;
use super::lock_key;
use crate::batch::{self, Applied, Done, Job, LoadedAccount, PriorRow};
use crate::codec::{decode_account, encode_account, parse_user, side_code, user_column};
use crate::record::Record;
use crate::write_health::WriteHealth;
use crate::{Clock, StoreError};

pub(crate) type Reply = oneshot::Sender<Result<Done, StoreError>>;
/// The queue every committer of a store takes batches from.
pub(crate) type Queue = Arc<Mutex<mpsc::Receiver<(Job, Reply)>>>;

/// How many times a batch runs before its jobs are told to retry later.
const MAX_ATTEMPTS: u32 = 10;
/// The advisory lock class (first of two 32-bit keys) of per-user locks.
const USER_LOCK_CLASS: i32 = 0x4454_5553; // "DTUS"

pub(crate) struct Committer {
    pub db: Db,
    pub server: String,
    pub clock: Clock,
    pub max_batch: usize,
    /// How the last batch ended, for readiness.
    pub health: WriteHealth,
}

/// Why one attempt at a batch failed.
enum Failure {
    /// Another transaction got in the way; running the batch again is
    /// expected to succeed.
    Conflict(String),
    Database(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        // 40P01 deadlock detected, 40001 serialization failure, 23505
        // unique violation (two instances ran the same idempotency key).
        let conflict = matches!(&error, sqlx::Error::Database(e)
            if e.code().is_some_and(|code| matches!(&*code, "40P01" | "40001" | "23505")));
        if conflict {
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
            .pool()
            .acquire()
            .await
            .map_err(|e| self.db.failed(e))?;
        let mut attempt = 1;
        loop {
            match self.attempt(&mut conn, jobs).await {
                Ok(applied) => return Ok(applied),
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
            }
        }
    }

    /// One try at the batch in one transaction. Dropping the transaction
    /// on an error rolls it back.
    async fn attempt(&self, conn: &mut PgConnection, jobs: &[Job]) -> Result<Applied, Failure> {
        let (users, keys) = batch::keys(jobs);
        let mut tx = conn.begin().await?;

        let names: Vec<&str> = users.iter().map(UserId::as_str).collect();
        let mut accounts = HashMap::with_capacity(users.len());
        lock_accounts(&mut tx, &names, &mut accounts).await?;
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
            // A new statement sees what committed while it waited.
            lock_accounts(&mut tx, &missing, &mut accounts).await?;
        }

        let (prior, seqs) = load_prior_and_number_rows(&mut tx, &keys, jobs.len()).await?;
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
        let seq: i64 = row.try_get("seq")?;
        let Some(user) = row.try_get::<Option<String>, _>("user_id")? else {
            seqs.push(seq);
            continue;
        };
        let record = Record::decode(row.try_get("body")?)
            .map_err(|e| StoreError::Corrupt(format!("log row {seq}: {e}")))?;
        let earlier = PriorRow {
            seq,
            ts_ms: row.try_get("ts_ms")?,
            txn: row.try_get("txn")?,
            record,
        };
        prior.insert((user, row.try_get("idem_key")?), earlier);
    }
    // One session's nextval calls increase; the sort only makes the order
    // independent of how rows come back.
    seqs.sort_unstable();
    Ok((prior, seqs))
}

/// Writes what a batch produced in one statement: each table's rows go in
/// as arrays through `unnest`, one data-modifying CTE per table (empty
/// arrays cost next to nothing). Returns how many of the batch's new
/// accounts were inserted.
///
/// The armed triggers of a user whose triggers changed are replaced
/// without touching a row twice (which one statement may not): rows not in
/// the new set are deleted, rows in it are upserted.
const WRITE: &str = "
WITH logged AS (
    INSERT INTO log (seq, ts_ms, server, user_id, txn, idem_key, body)
    SELECT seq, $1, $2, user_id, txn, idem_key, body
    FROM unnest($3::int8[], $4::text[], $5::int8[], $6::int8[], $7::bytea[])
         AS r(seq, user_id, txn, idem_key, body)
), changed AS (
    UPDATE accounts AS a SET state = c.state, version = c.version, updated_ms = $1
    FROM unnest($8::text[], $9::bytea[], $10::int8[]) AS c(user_id, state, version)
    WHERE a.user_id = c.user_id
), created AS (
    INSERT INTO accounts (user_id, state, version, updated_ms)
    SELECT user_id, state, version, $1
    FROM unnest($11::text[], $12::bytea[], $13::int8[]) AS n(user_id, state, version)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING 1
), armed AS (
    SELECT * FROM unnest($15::text[], $16::int2[], $17::text[], $18::int8[])
         AS t(symbol, side, user_id, trigger_price)
), disarmed AS (
    DELETE FROM armed_triggers AS old
    WHERE old.user_id = ANY($14::text[])
      AND NOT EXISTS (SELECT 1 FROM armed
                      WHERE armed.symbol = old.symbol AND armed.side = old.side
                        AND armed.user_id = old.user_id)
), rearmed AS (
    INSERT INTO armed_triggers (symbol, side, user_id, trigger_price)
    SELECT symbol, side, user_id, trigger_price FROM armed
    ON CONFLICT (symbol, side, user_id) DO UPDATE SET trigger_price = excluded.trigger_price
), notified AS (
    INSERT INTO notifications (user_id, created_ms, kind, message, txn)
    SELECT * FROM unnest($19::text[], $20::int8[], $21::text[], $22::text[], $23::int8[])
), registered AS (
    INSERT INTO credentials (user_id, password_hash, created_ms)
    SELECT * FROM unnest($24::text[], $25::text[], $26::int8[])
)
SELECT count(*) AS created FROM created";

/// Writes what a batch produced; `false` when a user this batch created
/// already has an account (another instance created it after this batch
/// looked), in which case the batch must run again.
async fn write(
    conn: &mut PgConnection,
    applied: &Applied,
    now_ms: i64,
    server: &str,
) -> Result<bool, Failure> {
    // Sorted by idempotency key, so that two batches inserting the same
    // keys wait on each other in one order rather than deadlock.
    let mut rows: Vec<_> = applied.rows.iter().collect();
    rows.sort_by_key(|&r| (user_column(r.row.user.as_ref()), r.idem_key));
    let log_seq: Vec<i64> = rows.iter().map(|r| r.row.seq).collect();
    let log_user: Vec<&str> = rows
        .iter()
        .map(|r| user_column(r.row.user.as_ref()))
        .collect();
    let log_txn: Vec<i64> = rows.iter().map(|r| r.row.txn).collect();
    let log_idem: Vec<Option<i64>> = rows.iter().map(|r| r.idem_key).collect();
    let log_body: Vec<Vec<u8>> = rows.iter().map(|r| r.row.record.encode()).collect();

    let (created, changed): (Vec<_>, Vec<_>) =
        applied.accounts.iter().partition(|write| write.is_new());
    let changed = AccountColumns::of(&changed);
    let created_columns = AccountColumns::of(&created);

    let rearmed: Vec<_> = applied
        .accounts
        .iter()
        .filter_map(|write| Some((write.user.as_str(), write.triggers.as_ref()?)))
        .collect();
    let rearmed_users: Vec<&str> = rearmed.iter().map(|(user, _)| *user).collect();
    let armed: Vec<_> = rearmed
        .iter()
        .flat_map(|(user, triggers)| triggers.iter().map(move |t| (*user, t)))
        .collect();
    let armed_symbol: Vec<&str> = armed.iter().map(|(_, t)| t.symbol.as_str()).collect();
    let armed_side: Vec<i16> = armed.iter().map(|(_, t)| side_code(t.side)).collect();
    let armed_user: Vec<&str> = armed.iter().map(|(user, _)| *user).collect();
    let armed_price: Vec<i64> = armed.iter().map(|(_, t)| t.trigger_price.cents()).collect();

    // unnest keeps array order, so notification ids follow the order the
    // events happened in.
    let notes = &applied.notifications;
    let note_user: Vec<&str> = notes.iter().map(|n| n.user.as_str()).collect();
    let note_created: Vec<i64> = notes.iter().map(|n| n.created_ms).collect();
    let note_kind: Vec<&str> = notes.iter().map(|n| n.kind.as_str()).collect();
    let note_message: Vec<&str> = notes.iter().map(|n| n.message.as_str()).collect();
    let note_txn: Vec<i64> = notes.iter().map(|n| n.txn).collect();

    // Each registration also created its account above: if another
    // instance created that user first, the count below tells, and the
    // batch runs again (and is then refused).
    let credentials = &applied.credentials;
    let credential_user: Vec<&str> = credentials.iter().map(|c| c.user.as_str()).collect();
    let credential_hash: Vec<&str> = credentials
        .iter()
        .map(|c| c.password_hash.as_str())
        .collect();
    let credential_created: Vec<i64> = credentials.iter().map(|c| c.created_ms).collect();

    let inserted: i64 = sqlx::query_scalar(WRITE)
        .bind(now_ms)
        .bind(server)
        .bind(&log_seq)
        .bind(&log_user)
        .bind(&log_txn)
        .bind(&log_idem)
        .bind(&log_body)
        .bind(&changed.user)
        .bind(&changed.state)
        .bind(&changed.version)
        .bind(&created_columns.user)
        .bind(&created_columns.state)
        .bind(&created_columns.version)
        .bind(&rearmed_users)
        .bind(&armed_symbol)
        .bind(&armed_side)
        .bind(&armed_user)
        .bind(&armed_price)
        .bind(&note_user)
        .bind(&note_created)
        .bind(&note_kind)
        .bind(&note_message)
        .bind(&note_txn)
        .bind(&credential_user)
        .bind(&credential_hash)
        .bind(&credential_created)
        .fetch_one(&mut *conn)
        .await?;
    Ok(inserted == created.len() as i64)
}

/// The `accounts` columns of some account writes, as arrays.
struct AccountColumns<'a> {
    user: Vec<&'a str>,
    state: Vec<Vec<u8>>,
    version: Vec<i64>,
}

impl<'a> AccountColumns<'a> {
    fn of(writes: &[&'a batch::AccountWrite]) -> AccountColumns<'a> {
        AccountColumns {
            user: writes.iter().map(|w| w.user.as_str()).collect(),
            state: writes.iter().map(|w| encode_account(&w.account)).collect(),
            version: writes.iter().map(|w| w.version).collect(),
        }
    }
}
