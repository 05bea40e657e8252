//! The committer's second stage: the thread that owns SQLite's write
//! connection. It writes each applied batch in one transaction, commits
//! (one fsync), and only then answers the batch's callers, in the order
//! the applier sent them (see `committer.rs` for the whole pipeline).

use std::sync::mpsc;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};

use super::committer::{self, MarkRead, Reply, TokenWrite};
use super::latest_prices::LatestPrices;
use tokio::sync::oneshot;

use crate::StoreError;
use crate::batch::Applied;
use crate::write_health::WriteHealth;

/// A batch the applier ran through the engine, ready to write.
pub(crate) struct Sealed {
    pub applied: Applied,
    pub replies: Vec<Reply>,
    /// When the applier started on it: the commit's time counts from here.
    pub started: Instant,
    pub jobs: usize,
    /// The batch's clock reading, recorded as the accounts' `updated_ms`.
    pub now_ms: i64,
}

/// What the writer does next.
pub(crate) enum ToWriter {
    Batch(Sealed),
    MarkRead(MarkRead),
    Token(TokenWrite),
    /// Readiness's probe row, while writes fail.
    Probe(oneshot::Sender<Result<(), StoreError>>),
}

impl ToWriter {
    pub fn with_id(self, id: u64, epoch: u64) -> Item {
        Item {
            id,
            epoch,
            work: self,
        }
    }
}

/// One piece of work, numbered by the applier, with the applier's epoch
/// when it was made.
pub(crate) struct Item {
    id: u64,
    epoch: u64,
    work: ToWriter,
}

/// Tells the applier an item is done.
pub(crate) struct Confirm {
    pub id: u64,
    pub epoch: u64,
    pub committed: bool,
}

/// Writes items until the applier hangs up, noting in `health` how each
/// write ends; `server` names this instance's probe row.
pub(crate) fn run(
    mut conn: Connection,
    server: &str,
    health: &WriteHealth,
    latest: &LatestPrices,
    items: mpsc::Receiver<Item>,
    confirm: mpsc::Sender<Confirm>,
) {
    // The epoch in which a batch failed: the batches after it in that
    // epoch were applied on its outcome, so they fail too.
    let mut failed_epoch = None;
    for item in items {
        let committed = match item.work {
            ToWriter::Batch(sealed) if failed_epoch == Some(item.epoch) => {
                let error = StoreError::Unavailable(
                    "an earlier batch this one depended on failed to commit".to_owned(),
                );
                for reply in sealed.replies {
                    let _ = reply.send(Err(error.for_another_caller()));
                }
                false
            }
            ToWriter::Batch(sealed) => {
                let ok = commit_batch(&mut conn, server, health, latest, sealed);
                if !ok {
                    failed_epoch = Some(item.epoch);
                }
                ok
            }
            ToWriter::MarkRead(mark) => {
                let result = in_transaction(&mut conn, |tx| committer::mark_read(tx, &mark));
                answer(health, mark.reply, result)
            }
            ToWriter::Token(token) => {
                let result =
                    in_transaction(&mut conn, |tx| committer::change_token(tx, &token.change));
                answer(health, token.reply, result)
            }
            ToWriter::Probe(reply) => {
                let result = in_transaction(&mut conn, |tx| committer::probe(tx, server));
                answer(health, reply, result)
            }
        };
        let _ = confirm.send(Confirm {
            id: item.id,
            epoch: item.epoch,
            committed,
        });
    }
}

/// Notes how a write outside the batches ended, and answers it; whether
/// it committed.
fn answer<T>(
    health: &WriteHealth,
    reply: oneshot::Sender<Result<T, StoreError>>,
    result: Result<T, StoreError>,
) -> bool {
    match &result {
        Ok(_) => health.succeeded(),
        Err(error) => health.failed(error),
    }
    let ok = result.is_ok();
    let _ = reply.send(result);
    ok
}

/// Writes and commits one batch of this instance (`server`), notes the
/// price points it added in `latest`, then answers its callers.
fn commit_batch(
    conn: &mut Connection,
    server: &str,
    health: &WriteHealth,
    latest: &LatestPrices,
    sealed: Sealed,
) -> bool {
    let Sealed {
        applied,
        replies,
        started,
        jobs,
        now_ms,
    } = sealed;
    match in_transaction(conn, |tx| committer::write(tx, &applied, now_ms, server)) {
        Ok(points) => {
            latest.committed(&points);
            health.succeeded();
            metrics::histogram!("store_batch_size").record(jobs as f64);
            metrics::histogram!("store_commit_seconds").record(started.elapsed().as_secs_f64());
            for (reply, result) in replies.into_iter().zip(applied.results) {
                let _ = reply.send(result.map_err(StoreError::Job));
            }
            true
        }
        Err(error) => {
            health.failed(&error);
            tracing::error!(%error, jobs, "a SQLite batch failed and was rolled back");
            metrics::counter!("store_batch_failures_total").increment(1);
            for reply in replies {
                let _ = reply.send(Err(error.for_another_caller()));
            }
            false
        }
    }
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits.
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}
