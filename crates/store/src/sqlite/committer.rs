//! The one thread that writes to the SQLite database.
//!
//! Every write waits in a channel; the committer takes all that are waiting
//! (up to a bound), runs them in one `BEGIN IMMEDIATE` transaction and
//! commits once, so one fsync covers the whole batch (group commit). Being
//! the only writer, it never meets "database is locked", and it can hand out
//! row numbers from a counter. That is why marking notifications read and
//! changing API tokens come here too rather than through a second writer
//! connection.

use std::collections::HashMap;
use std::time::Instant;

use engine::UserId;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{self, Applied, Done, Job, LoadedAccount, PriorRow};
use crate::codec::{decode_account, encode_account, side_code, user_column};
use crate::record::Record;
use crate::tokens::TokenChange;
use crate::write_health::WriteHealth;
use crate::{Clock, StoreError};

pub(crate) enum Msg {
    Job(Box<Job>, oneshot::Sender<Result<Done, StoreError>>),
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
    pub conn: Connection,
    pub server: String,
    pub clock: Clock,
    pub max_batch: usize,
    pub next_seq: i64,
    /// The committed state of the accounts recent batches touched.
    pub accounts: AccountCache,
    /// How the last batch ended, for readiness.
    pub health: WriteHealth,
}

/// Accounts as last committed, decoded. The committer is the database's
/// only writer, so what it committed is what the file holds: a batch
/// starts from here instead of reading and decoding each account again,
/// which was a third of the committer's time, growing with each account's
/// pending orders.
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
        if self.accounts.len() >= Self::MAX_ACCOUNTS && !self.accounts.contains_key(&user) {
            self.accounts.clear();
        }
        self.accounts.insert(user, account);
    }

    fn forget(&mut self, user: &UserId) {
        self.accounts.remove(user);
    }

    /// After a failed batch nothing is sure of the file's state but the
    /// file itself.
    fn clear(&mut self) {
        self.accounts.clear();
    }
}

/// The writes gathered for one transaction.
#[derive(Default)]
struct Pending {
    jobs: Vec<Job>,
    replies: Vec<oneshot::Sender<Result<Done, StoreError>>>,
    marks: Vec<MarkRead>,
    tokens: Vec<TokenWrite>,
    probes: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

impl Pending {
    fn len(&self) -> usize {
        self.jobs.len() + self.marks.len() + self.tokens.len() + self.probes.len()
    }
}

impl Committer {
    pub fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut pending = Pending::default();
        let mut stop = None;
        while stop.is_none() {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Job(job, reply) => {
                        pending.jobs.push(*job);
                        pending.replies.push(reply);
                    }
                    Msg::MarkRead(mark) => pending.marks.push(mark),
                    Msg::Token(token) => pending.tokens.push(token),
                    Msg::Probe(reply) => pending.probes.push(reply),
                    Msg::Stop(ack) => {
                        stop = Some(ack);
                        break;
                    }
                }
                if pending.len() < self.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            if pending.len() > 0 {
                self.commit_and_answer(&mut pending);
            }
        }
        drop(self.conn);
        if let Some(ack) = stop {
            let _ = ack.send(());
        }
    }

    fn commit_and_answer(&mut self, pending: &mut Pending) {
        let started = Instant::now();
        let first_seq = self.next_seq;
        match self.commit(pending) {
            Ok((applied, marked, tokens)) => {
                self.health.succeeded();
                metrics::histogram!("store_batch_size").record(pending.jobs.len() as f64);
                metrics::histogram!("store_commit_seconds").record(started.elapsed().as_secs_f64());
                for (reply, result) in pending.replies.drain(..).zip(applied.results) {
                    let _ = reply.send(result.map_err(StoreError::Job));
                }
                for (mark, count) in pending.marks.drain(..).zip(marked) {
                    let _ = mark.reply.send(Ok(count));
                }
                for (token, answer) in pending.tokens.drain(..).zip(tokens) {
                    let _ = token.reply.send(Ok(answer));
                }
                for probe in pending.probes.drain(..) {
                    let _ = probe.send(Ok(()));
                }
            }
            Err(error) => {
                // Nothing of the batch was written: hand its row numbers out again.
                self.next_seq = first_seq;
                self.accounts.clear();
                self.health.failed(&error);
                tracing::error!(%error, jobs = pending.jobs.len(), "a SQLite batch failed and was rolled back");
                metrics::counter!("store_batch_failures_total").increment(1);
                for reply in pending.replies.drain(..) {
                    let _ = reply.send(Err(error.for_another_caller()));
                }
                for mark in pending.marks.drain(..) {
                    let _ = mark.reply.send(Err(error.for_another_caller()));
                }
                for token in pending.tokens.drain(..) {
                    let _ = token.reply.send(Err(error.for_another_caller()));
                }
                for probe in pending.probes.drain(..) {
                    let _ = probe.send(Err(error.for_another_caller()));
                }
            }
        }
        pending.jobs.clear();
    }

    /// Runs everything pending in one transaction: returns what the jobs
    /// came to, how many notifications each mark changed and each token
    /// write's answer.
    fn commit(&mut self, pending: &Pending) -> Result<(Applied, Vec<u64>, Vec<i64>), StoreError> {
        let jobs = &pending.jobs;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Before the batch's own writes: a reader can only have seen (and
        // be marking) notifications committed earlier, so the ones this
        // batch creates stay unread.
        let marked = pending
            .marks
            .iter()
            .map(|mark| mark_read(&tx, mark))
            .collect::<Result<Vec<_>, _>>()?;
        let tokens = pending
            .tokens
            .iter()
            .map(|token| change_token(&tx, &token.change))
            .collect::<Result<Vec<_>, _>>()?;
        // Marking notifications read moved those accounts' versions on, in
        // this transaction: the batch must start from that version.
        for (mark, &changed) in pending.marks.iter().zip(&marked) {
            if changed > 0 {
                self.accounts.forget(&mark.user);
            }
        }
        let (users, keys) = batch::keys(jobs);

        let mut accounts = HashMap::with_capacity(users.len());
        {
            let mut load =
                tx.prepare_cached("SELECT state, version FROM accounts WHERE user_id = ?1")?;
            for user in users {
                if let Some(cached) = self.accounts.get(&user) {
                    accounts.insert(user, cached.clone());
                    continue;
                }
                let found = load
                    .query_row([user.as_str()], |row| {
                        Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()?;
                if let Some((state, version)) = found {
                    let account = decode_account(&user, &state)?;
                    let loaded = LoadedAccount { account, version };
                    // Committed state: true whatever this batch comes to.
                    self.accounts.insert(user.clone(), loaded.clone());
                    accounts.insert(user, loaded);
                }
            }
        }

        let mut prior = HashMap::new();
        {
            let mut find = tx.prepare_cached(
                "SELECT seq, ts_ms, txn, body FROM log WHERE user_id = ?1 AND idem_key = ?2",
            )?;
            for (user, key) in keys {
                let found = find
                    .query_row(params![user, key], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get::<_, Vec<u8>>(3)?,
                        ))
                    })
                    .optional()?;
                if let Some((seq, ts_ms, txn, body)) = found {
                    let record = Record::decode(&body)
                        .map_err(|e| StoreError::Corrupt(format!("log row {seq}: {e}")))?;
                    prior.insert(
                        (user, key),
                        PriorRow {
                            seq,
                            ts_ms,
                            txn,
                            record,
                        },
                    );
                }
            }
        }

        let now_ms = (self.clock)();
        let next_seq = &mut self.next_seq;
        let mut applied = batch::apply(jobs, accounts, prior, now_ms, &self.server, || {
            let seq = *next_seq;
            *next_seq += 1;
            seq
        });
        write(&tx, &applied, now_ms)?;
        if !pending.probes.is_empty() {
            tx.prepare_cached(
                "INSERT INTO write_probe (instance, at_ms) VALUES (?1, ?2)
                 ON CONFLICT (instance) DO UPDATE SET at_ms = excluded.at_ms",
            )?
            .execute(params![self.server, now_ms])?;
        }
        tx.commit()?;
        for write in std::mem::take(&mut applied.accounts) {
            let loaded = LoadedAccount {
                account: write.account,
                version: write.version,
            };
            self.accounts.insert(write.user, loaded);
        }
        Ok((applied, marked, tokens))
    }
}

/// Writes what a batch produced, inside its transaction.
fn write(tx: &Transaction<'_>, applied: &Applied, now_ms: i64) -> Result<(), StoreError> {
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
        "INSERT INTO accounts (user_id, state, version, updated_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, version = excluded.version,
         updated_ms = excluded.updated_ms",
    )?;
    let mut clear = tx.prepare_cached("DELETE FROM armed_triggers WHERE user_id = ?1")?;
    let mut arm = tx.prepare_cached(
        "INSERT INTO armed_triggers (symbol, side, user_id, trigger_price) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for write in &applied.accounts {
        let state = encode_account(&write.account);
        save.execute(params![write.user.as_str(), state, write.version, now_ms])?;
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
    Ok(())
}

fn mark_read(tx: &Transaction<'_>, mark: &MarkRead) -> Result<u64, StoreError> {
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

fn change_token(tx: &Transaction<'_>, change: &TokenChange) -> Result<i64, StoreError> {
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
    })
}
