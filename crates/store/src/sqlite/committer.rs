//! The SQLite committer: a pipeline of two threads, so that one batch runs
//! against the accounts in memory while the one before it waits for its
//! fsync.
//!
//! Every write waits in a channel. The *applier* (this module) takes all
//! that are waiting (up to a bound), runs them through the engine
//! ([`batch::apply`]) against the accounts as the batches before it left
//! them, and hands the result to the *writer* ([`super::writer`]), which
//! writes it in one `BEGIN IMMEDIATE` transaction, commits (one fsync for
//! the whole batch) and only then answers the batch's callers. While the
//! writer commits batch N, the applier already applies batch N + 1.
//!
//! What stays true:
//! - an answer means committed: the writer answers after its COMMIT;
//! - a user's commands keep their order: batches apply in arrival order
//!   and commit in that same order;
//! - a batch that fails to commit takes the batches applied on top of it
//!   down with it (they ran on its outcome): every batch carries the
//!   applier's epoch, the writer fails the rest of a failed epoch, and
//!   the applier starts a new epoch from what the file holds;
//! - a retry finds its first outcome: a key whose batch is still in
//!   flight makes the applier wait for that batch's commit, then read it.
//!
//! Being the only writer, the committer never meets "database is locked"
//! and hands out row numbers from a counter. That is why marking
//! notifications read and changing API tokens come here too rather than
//! through a second writer connection; they are rare, and run alone, once
//! the batches before them have committed.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use engine::UserId;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::latest_prices::LatestPrices;
use super::writer::{self, Confirm, Item, Sealed, ToWriter};
use crate::batch::{self, Applied, Done, Job, LoadedAccount, PriorRow};
use crate::codec::{decode_account, encode_account, limit_param, side_code, user_column};
use crate::prices::{COUNT_PRICE_GENERATION, NewPricePoint, PRICE_HISTORY_LIMIT, fetched_points};
use crate::record::Record;
use crate::tokens::TokenChange;
use crate::write_health::WriteHealth;
use crate::{Clock, StoreError};

pub(crate) type Reply = oneshot::Sender<Result<Done, StoreError>>;

pub(crate) enum Msg {
    Job(Box<Job>, Reply),
    MarkRead(MarkRead),
    Token(TokenWrite),
    /// Write the probe row (readiness asks while writes fail).
    Probe(oneshot::Sender<Result<(), StoreError>>),
    /// Finish what is queued before this, then stop.
    Stop(oneshot::Sender<()>),
}

/// Marks a user's notifications read: all of them, or those among `ids`.
pub(crate) struct MarkRead {
    pub user: UserId,
    pub ids: Option<Vec<i64>>,
    pub reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// Creates or revokes an API token. Answers a new token's id, or how many
/// tokens a revocation revoked (0 or 1).
pub(crate) struct TokenWrite {
    pub change: TokenChange,
    pub reply: oneshot::Sender<Result<i64, StoreError>>,
}

pub(crate) struct Committer {
    /// The writer's connection, handed to its thread at the start.
    pub conn: Connection,
    /// The applier's own connection, for what is not in memory: accounts
    /// no recent batch touched, and idempotency records of committed rows.
    pub read: Connection,
    pub server: String,
    pub clock: Clock,
    pub max_batch: usize,
    pub next_seq: i64,
    /// The accounts recent batches touched, as the last applied batch
    /// left them.
    pub accounts: AccountCache,
    /// How the last write ended, for readiness.
    pub health: WriteHealth,
    /// The newest price of each symbol, which the writer keeps current.
    pub latest_prices: LatestPrices,
}

/// Accounts as the batches applied so far left them, decoded. The
/// committer is the database's only writer, so once its batches have
/// committed this is what the file holds; until then it is what the file
/// will hold, and the next batch starts from it. Reading and decoding
/// each account again had been a third of the committer's time, growing
/// with each account's pending orders.
#[derive(Default)]
pub(crate) struct AccountCache {
    accounts: HashMap<UserId, LoadedAccount>,
}

impl AccountCache {
    /// Enough for every active trader; past it the cache starts over
    /// rather than grow without bound.
    const MAX_ACCOUNTS: usize = 100_000;

    fn get(&self, user: &UserId) -> Option<&LoadedAccount> {
        self.accounts.get(user)
    }

    fn insert(&mut self, user: UserId, account: LoadedAccount) {
        self.accounts.insert(user, account);
    }

    fn forget(&mut self, user: &UserId) {
        self.accounts.remove(user);
    }

    /// Starts over when full. Only while nothing is in flight: an account
    /// a batch in flight changed is in the file only once that commits.
    fn trim(&mut self) {
        if self.accounts.len() >= Self::MAX_ACCOUNTS {
            self.accounts.clear();
        }
    }

    /// After a failed batch nothing is sure of the file's state but the
    /// file itself.
    fn clear(&mut self) {
        self.accounts.clear();
    }
}

/// Batches sent to the writer and not yet confirmed.
#[derive(Default)]
struct InFlight {
    /// Batch ids, oldest first.
    batches: VecDeque<u64>,
    /// The idempotency keys those batches executed, by batch id.
    keys: HashMap<(String, i64), u64>,
    by_batch: HashMap<u64, Vec<(String, i64)>>,
}

impl InFlight {
    fn confirmed(&mut self, id: u64) {
        self.batches.retain(|&b| b != id);
        for key in self.by_batch.remove(&id).unwrap_or_default() {
            if self.keys.get(&key) == Some(&id) {
                self.keys.remove(&key);
            }
        }
    }

    fn clear(&mut self) {
        self.batches.clear();
        self.keys.clear();
        self.by_batch.clear();
    }
}

/// The applier: the committer's first stage, on its own thread.
struct Applier {
    read: Connection,
    server: String,
    clock: Clock,
    max_batch: usize,
    next_seq: i64,
    accounts: AccountCache,
    to_writer: std_mpsc::SyncSender<Item>,
    confirms: std_mpsc::Receiver<Confirm>,
    next_id: u64,
    /// Bumped when a batch fails: every batch applied on the failed one's
    /// outcome carries the same epoch, and fails with it.
    epoch: u64,
    in_flight: InFlight,
}

impl Committer {
    /// Runs the pipeline until the channel closes or a stop arrives: the
    /// writer on a thread of its own, the applier on this one.
    pub fn run(self, rx: mpsc::Receiver<Msg>) {
        // One batch waiting for the writer while it commits another: the
        // applier runs at most one batch ahead, and while it waits, jobs
        // gather in the channel into the next, larger batch.
        let (to_writer, from_applier) = std_mpsc::sync_channel(1);
        let (confirm, confirms) = std_mpsc::channel();
        let conn = self.conn;
        let (health, server, latest) = (self.health, self.server.clone(), self.latest_prices);
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(conn, &server, &health, &latest, from_applier, confirm));
        let writer = match writer {
            Ok(writer) => writer,
            Err(error) => {
                tracing::error!(%error, "cannot start the SQLite writer thread");
                return;
            }
        };
        let mut applier = Applier {
            read: self.read,
            server: self.server,
            clock: self.clock,
            max_batch: self.max_batch,
            next_seq: self.next_seq,
            accounts: self.accounts,
            to_writer,
            confirms,
            next_id: 0,
            epoch: 0,
            in_flight: InFlight::default(),
        };
        let stop = applier.run(rx);
        drop(applier);
        let _ = writer.join();
        if let Some(ack) = stop {
            let _ = ack.send(());
        }
    }
}

impl Applier {
    fn run(&mut self, mut rx: mpsc::Receiver<Msg>) -> Option<oneshot::Sender<()>> {
        let mut jobs = Vec::new();
        let mut replies = Vec::new();
        loop {
            let Some(first) = rx.blocking_recv() else {
                self.drain();
                return None;
            };
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Job(job, reply) => {
                        jobs.push(*job);
                        replies.push(reply);
                        if jobs.len() < self.max_batch {
                            next = rx.try_recv().ok();
                        }
                    }
                    // Rare, and touching what batches write: they run
                    // alone, after what came before them.
                    Msg::MarkRead(mark) => {
                        self.batch(&mut jobs, &mut replies);
                        self.drain();
                        let user = mark.user.clone();
                        self.alone(ToWriter::MarkRead(mark));
                        // Its version moved on in the file.
                        self.accounts.forget(&user);
                    }
                    Msg::Token(token) => {
                        self.batch(&mut jobs, &mut replies);
                        self.alone(ToWriter::Token(token));
                    }
                    Msg::Probe(reply) => {
                        self.batch(&mut jobs, &mut replies);
                        self.alone(ToWriter::Probe(reply));
                    }
                    Msg::Stop(ack) => {
                        self.batch(&mut jobs, &mut replies);
                        self.drain();
                        return Some(ack);
                    }
                }
            }
            self.batch(&mut jobs, &mut replies);
        }
    }

    /// Sends something to the writer and waits until it is done.
    fn alone(&mut self, item: ToWriter) {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.batches.push_back(id);
        if self.to_writer.send(item.with_id(id, self.epoch)).is_err() {
            self.in_flight.batches.pop_back();
            return;
        }
        self.drain();
    }

    /// Waits until every batch sent has committed (or failed).
    fn drain(&mut self) {
        while !self.in_flight.batches.is_empty() {
            match self.confirms.recv() {
                Ok(confirm) => self.confirmed(confirm),
                Err(_) => {
                    self.in_flight.clear();
                    return;
                }
            }
        }
    }

    /// Takes in what the writer has confirmed so far, without waiting.
    fn poll_confirms(&mut self) {
        while let Ok(confirm) = self.confirms.try_recv() {
            self.confirmed(confirm);
        }
    }

    fn confirmed(&mut self, confirm: Confirm) {
        self.in_flight.confirmed(confirm.id);
        if !confirm.committed && confirm.epoch == self.epoch {
            // Every batch applied after the failed one ran on its outcome,
            // and the writer fails them too: start over from the file.
            self.epoch += 1;
            self.accounts.clear();
            self.in_flight.keys.clear();
            self.in_flight.by_batch.clear();
        }
    }

    /// Applies the jobs gathered and sends the result to the writer. A
    /// batch that cannot be applied (the file cannot be read) is answered
    /// with the error at once.
    fn batch(&mut self, jobs: &mut Vec<Job>, replies: &mut Vec<Reply>) {
        if jobs.is_empty() {
            return;
        }
        self.poll_confirms();
        if self.in_flight.batches.is_empty() {
            self.accounts.trim();
        }
        let started = Instant::now();
        match self.apply(jobs) {
            Ok((applied, now_ms)) => {
                let id = self.next_id;
                self.next_id += 1;
                let keys: Vec<(String, i64)> = applied
                    .rows
                    .iter()
                    .filter_map(|new| {
                        Some((user_column(new.row.user.as_ref()).to_owned(), new.idem_key?))
                    })
                    .collect();
                for key in &keys {
                    self.in_flight.keys.insert(key.clone(), id);
                }
                self.in_flight.by_batch.insert(id, keys);
                self.in_flight.batches.push_back(id);
                let sealed = Sealed {
                    applied,
                    replies: std::mem::take(replies),
                    started,
                    jobs: jobs.len(),
                    now_ms,
                };
                if self
                    .to_writer
                    .send(ToWriter::Batch(sealed).with_id(id, self.epoch))
                    .is_err()
                {
                    // The writer is gone: nothing more can commit.
                    self.in_flight.confirmed(id);
                }
            }
            Err(error) => {
                tracing::error!(%error, jobs = jobs.len(), "a SQLite batch could not be applied");
                metrics::counter!("store_batch_failures_total").increment(1);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(error.for_another_caller()));
                }
            }
        }
        jobs.clear();
    }

    /// Loads what the jobs need and runs them through the engine.
    fn apply(&mut self, jobs: &[Job]) -> Result<(Applied, i64), StoreError> {
        let (users, keys) = batch::keys(jobs);
        let mut accounts = HashMap::with_capacity(users.len());
        for user in users {
            if let Some(cached) = self.accounts.get(&user) {
                accounts.insert(user, cached.clone());
                continue;
            }
            // Not in memory, so no batch in flight touched it: the file
            // has it as it is.
            let found = self
                .read
                .prepare_cached("SELECT state, version FROM accounts WHERE user_id = ?1")?
                .query_row([user.as_str()], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
                })
                .optional()?;
            if let Some((state, version)) = found {
                let account = decode_account(&user, &state)?;
                let loaded = LoadedAccount { account, version };
                self.accounts.insert(user.clone(), loaded.clone());
                accounts.insert(user, loaded);
            }
        }

        let mut prior = HashMap::new();
        for key in keys {
            // Executed by a batch still in flight: its outcome is known
            // once it commits (or it failed, and the key is new again).
            if let Some(&batch) = self.in_flight.keys.get(&key) {
                self.wait_for(batch);
            }
            if let Some(earlier) = self.find(&key)? {
                prior.insert(key, earlier);
            }
        }

        let now_ms = (self.clock)();
        let next_seq = &mut self.next_seq;
        let applied = batch::apply(jobs, accounts, prior, now_ms, &self.server, || {
            let seq = *next_seq;
            *next_seq += 1;
            seq
        });
        for write in &applied.accounts {
            let loaded = LoadedAccount {
                account: write.account.clone(),
                version: write.version,
            };
            self.accounts.insert(write.user.clone(), loaded);
        }
        Ok((applied, now_ms))
    }

    /// Waits until batch `id` is confirmed.
    fn wait_for(&mut self, id: u64) {
        while self.in_flight.batches.contains(&id) {
            match self.confirms.recv() {
                Ok(confirm) => self.confirmed(confirm),
                Err(_) => {
                    self.in_flight.clear();
                    return;
                }
            }
        }
    }

    /// The committed row of an idempotency key.
    fn find(&self, (user, key): &(String, i64)) -> Result<Option<PriorRow>, StoreError> {
        let found = self
            .read
            .prepare_cached(
                "SELECT seq, ts_ms, txn, body FROM log WHERE user_id = ?1 AND idem_key = ?2",
            )?
            .query_row(params![user, key], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            })
            .optional()?;
        found
            .map(|(seq, ts_ms, txn, body)| {
                let record = Record::decode(&body)
                    .map_err(|e| StoreError::Corrupt(format!("log row {seq}: {e}")))?;
                Ok(PriorRow {
                    seq,
                    ts_ms,
                    txn,
                    record,
                })
            })
            .transpose()
    }
}

/// Writes what a batch of this instance (`server`) produced, inside its
/// transaction; returns the price points it added.
pub(super) fn write(
    tx: &Transaction<'_>,
    applied: &Applied,
    now_ms: i64,
    server: &str,
) -> Result<Vec<NewPricePoint>, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO log (seq, ts_ms, server, user_id, txn, idem_key, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for new in &applied.rows {
        let row = &new.row;
        insert.execute(params![
            row.seq,
            row.ts_ms,
            row.server,
            user_column(row.user.as_ref()),
            row.txn,
            new.idem_key,
            row.record.encode()
        ])?;
    }
    let mut save = tx.prepare_cached(
        "INSERT INTO accounts (user_id, state, version, updated_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, version = excluded.version,
         updated_ms = excluded.updated_ms, expires_ms = excluded.expires_ms",
    )?;
    let mut clear = tx.prepare_cached("DELETE FROM armed_triggers WHERE user_id = ?1")?;
    let mut arm = tx.prepare_cached(
        "INSERT INTO armed_triggers (symbol, side, user_id, trigger_price) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for write in &applied.accounts {
        let state = encode_account(&write.account);
        save.execute(params![
            write.user.as_str(),
            state,
            write.version,
            now_ms,
            write.account.next_expiry_ms()
        ])?;
        if let Some(triggers) = &write.triggers {
            clear.execute([write.user.as_str()])?;
            for trigger in triggers {
                arm.execute(params![
                    trigger.symbol.as_str(),
                    side_code(trigger.side),
                    write.user.as_str(),
                    trigger.trigger_price.cents()
                ])?;
            }
        }
    }
    let mut credentials = tx.prepare_cached(
        "INSERT INTO credentials (user_id, password_hash, created_ms) VALUES (?1, ?2, ?3)",
    )?;
    for new in &applied.credentials {
        credentials.execute(params![
            new.user.as_str(),
            new.password_hash,
            new.created_ms
        ])?;
    }
    let mut notify = tx.prepare_cached(
        "INSERT INTO notifications (user_id, created_ms, kind, message, txn) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for note in &applied.notifications {
        notify.execute(params![
            note.user.as_str(),
            note.created_ms,
            note.kind.as_str(),
            note.message,
            note.txn
        ])?;
    }
    write_prices(tx, applied, server)
}

/// Adds the prices the batch fetched to the price history, drops the
/// points of their symbols beyond the newest [`PRICE_HISTORY_LIMIT`], and
/// counts the batch in the price generation (`prices.rs`). Returns the
/// points added.
fn write_prices(
    tx: &Transaction<'_>,
    applied: &Applied,
    server: &str,
) -> Result<Vec<NewPricePoint>, StoreError> {
    let points = fetched_points(applied);
    if points.is_empty() {
        return Ok(points);
    }
    tx.prepare_cached(COUNT_PRICE_GENERATION)?
        .execute([server])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO price_history (symbol, at_ms, seq, price) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for new in &points {
        insert.execute(params![
            new.symbol.as_str(),
            new.point.at_ms,
            new.seq,
            new.point.price.cents()
        ])?;
    }
    let mut prune = tx.prepare_cached(
        "DELETE FROM price_history WHERE symbol = ?1 AND (at_ms, seq) <= (
             SELECT at_ms, seq FROM price_history WHERE symbol = ?1
             ORDER BY at_ms DESC, seq DESC LIMIT 1 OFFSET ?2)",
    )?;
    let mut symbols: Vec<_> = points.iter().map(|p| p.symbol).collect();
    symbols.sort();
    symbols.dedup();
    for symbol in symbols {
        prune.execute(params![symbol.as_str(), limit_param(PRICE_HISTORY_LIMIT)])?;
    }
    Ok(points)
}

pub(super) fn mark_read(tx: &Transaction<'_>, mark: &MarkRead) -> Result<u64, StoreError> {
    let user = mark.user.as_str();
    let changed = match &mark.ids {
        None => tx
            .prepare_cached("UPDATE notifications SET read = 1 WHERE user_id = ?1 AND read = 0")?
            .execute([user])?,
        Some(ids) => {
            let mut one = tx.prepare_cached(
                "UPDATE notifications SET read = 1 WHERE user_id = ?1 AND id = ?2 AND read = 0",
            )?;
            let mut changed = 0;
            for id in ids {
                changed += one.execute(params![user, id])?;
            }
            changed
        }
    };
    // What a trader sees changed: a new version makes their cached pages
    // stale, as a command does.
    if changed > 0 {
        tx.prepare_cached("UPDATE accounts SET version = version + 1 WHERE user_id = ?1")?
            .execute([user])?;
    }
    Ok(changed as u64)
}

pub(super) fn change_token(tx: &Transaction<'_>, change: &TokenChange) -> Result<i64, StoreError> {
    Ok(match change {
        TokenChange::Create(token) => {
            tx.prepare_cached(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                token.user.as_str(),
                token.name,
                token.hash.as_slice(),
                token.created_ms
            ])?;
            tx.last_insert_rowid()
        }
        TokenChange::Revoke { user, id, now_ms } => tx
            .prepare_cached(
                "UPDATE api_tokens SET revoked_ms = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_ms IS NULL",
            )?
            .execute(params![id, user.as_str(), now_ms])? as i64,
        TokenChange::SetPassword { user, hash, now_ms } => tx
            .prepare_cached(SET_PASSWORD)?
            .execute(params![user.as_str(), hash, now_ms])?
            as i64,
    })
}

/// Sets a password, the first or a new one (the same text on both back
/// ends).
const SET_PASSWORD: &str = crate::tokens::SET_PASSWORD;

/// Writes this instance's probe row: a write that changes nothing anyone
/// reads, to learn whether writes go through again.
pub(super) fn probe(tx: &Transaction<'_>, server: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO write_probe (instance, at_ms) VALUES (?1, ?2)
         ON CONFLICT (instance) DO UPDATE SET at_ms = excluded.at_ms",
    )?
    .execute(params![server, crate::system_clock()()])?;
    Ok(())
}
