//! The one thread that writes to the SQLite database.
//!
//! Every job waits in a channel; the committer takes all that are waiting
//! (up to a bound), runs them in one `BEGIN IMMEDIATE` transaction and
//! commits once, so one fsync covers the whole batch (group commit). Being
//! the only writer, it never meets "database is locked", and it can hand out
//! row numbers from a counter.

use std::collections::HashMap;
use std::time::Instant;

use engine::{Account, TriggerSide, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{self, Applied, Done, Job, LoadedAccount, PriorRow};
use crate::record::Record;
use crate::{Clock, StoreError};

pub(crate) enum Msg {
    Job(Box<Job>, oneshot::Sender<Result<Done, StoreError>>),
    /// Finish what is queued before this, then stop.
    Stop(oneshot::Sender<()>),
}

pub(crate) struct Committer {
    pub conn: Connection,
    pub server: String,
    pub clock: Clock,
    pub max_batch: usize,
    pub next_seq: i64,
}

impl Committer {
    pub fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut jobs = Vec::with_capacity(self.max_batch);
        let mut replies = Vec::with_capacity(self.max_batch);
        let mut stop = None;
        while stop.is_none() {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Job(job, reply) => {
                        jobs.push(*job);
                        replies.push(reply);
                    }
                    Msg::Stop(ack) => {
                        stop = Some(ack);
                        break;
                    }
                }
                if jobs.len() < self.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            if !jobs.is_empty() {
                self.commit_and_answer(&mut jobs, &mut replies);
            }
        }
        drop(self.conn);
        if let Some(ack) = stop {
            let _ = ack.send(());
        }
    }

    fn commit_and_answer(
        &mut self,
        jobs: &mut Vec<Job>,
        replies: &mut Vec<oneshot::Sender<Result<Done, StoreError>>>,
    ) {
        let started = Instant::now();
        let first_seq = self.next_seq;
        match self.commit(jobs) {
            Ok(applied) => {
                metrics::histogram!("store_batch_size").record(jobs.len() as f64);
                metrics::histogram!("store_commit_seconds").record(started.elapsed().as_secs_f64());
                for (reply, result) in replies.drain(..).zip(applied.results) {
                    let _ = reply.send(result.map_err(StoreError::Job));
                }
            }
            Err(error) => {
                // Nothing of the batch was written: hand its row numbers out again.
                self.next_seq = first_seq;
                tracing::error!(%error, jobs = jobs.len(), "a SQLite batch failed and was rolled back");
                metrics::counter!("store_batch_failures_total").increment(1);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(StoreError::Unavailable(error.to_string())));
                }
            }
        }
        jobs.clear();
    }

    fn commit(&mut self, jobs: &[Job]) -> Result<Applied, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (users, keys) = batch::keys(jobs);

        let mut accounts = HashMap::with_capacity(users.len());
        {
            let mut load =
                tx.prepare_cached("SELECT state, version FROM accounts WHERE user_id = ?1")?;
            for user in users {
                let found = load
                    .query_row([user.as_str()], |row| {
                        Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()?;
                if let Some((state, version)) = found {
                    let account = decode_account(&user, &state)?;
                    accounts.insert(user, LoadedAccount { account, version });
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
        let applied = batch::apply(jobs, accounts, prior, now_ms, &self.server, || {
            let seq = *next_seq;
            *next_seq += 1;
            seq
        });

        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO log (seq, ts_ms, server, user_id, txn, idem_key, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for new in &applied.rows {
                let row = &new.row;
                let user = row.user.as_ref().map_or(batch::GLOBAL_USER, UserId::as_str);
                insert.execute(params![
                    row.seq,
                    row.ts_ms,
                    row.server,
                    user,
                    row.txn,
                    new.idem_key,
                    row.record.encode()
                ])?;
            }
        }
        {
            let mut save = tx.prepare_cached(
                "INSERT INTO accounts (user_id, state, version, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, version = excluded.version,
                 updated_ms = excluded.updated_ms",
            )?;
            let mut clear = tx.prepare_cached("DELETE FROM armed_triggers WHERE user_id = ?1")?;
            let mut arm =
                tx.prepare_cached("INSERT INTO armed_triggers (symbol, side, user_id, trigger_price) VALUES (?1, ?2, ?3, ?4)")?;
            for write in &applied.accounts {
                let state = postcard::to_allocvec(&write.account).expect("accounts always encode");
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
        }
        tx.commit()?;
        Ok(applied)
    }
}

pub(crate) fn side_code(side: TriggerSide) -> i64 {
    match side {
        TriggerSide::Buy => 0,
        TriggerSide::Sell => 1,
    }
}

pub(crate) fn decode_account(user: &UserId, state: &[u8]) -> Result<Account, StoreError> {
    postcard::from_bytes(state).map_err(|e| StoreError::Corrupt(format!("account {user}: {e}")))
}
