//! DayTrader's storage. Every command becomes one row of an append-only
//! audit log, written in the same transaction as the account it changed; the
//! row doubles as the command's idempotency record. A group committer puts
//! every command waiting at a moment into one transaction, so durability
//! costs one fsync per batch instead of one per command.
//!
//! The engine decides; the store only loads, applies (through
//! [`batch::apply`], shared by every back end) and writes.

pub mod batch;
pub mod record;
pub mod sqlite;
pub mod xml;

use std::sync::Arc;

pub use batch::{Done, Job, JobError, LoadedAccount, Work};
pub use record::{Balance, HistoryItem, LogRow, QuoteFetch, QuoteUse, Record};
pub use sqlite::{SqliteOptions, SqliteReader, SqliteStore};

/// The current time in Unix milliseconds. Passed in so tests control it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// The audit-log schema this store's XML follows (the SENG 468 format,
/// accepting timestamps from 2000 to 2100).
pub const LOG_SCHEMA_XSD: &str = include_str!("../schema/logfile.xsd");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the work; safe to retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The store is shutting down.
    #[error("the store is shut down")]
    Closed,
    /// Stored data that cannot be read.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Job(#[from] JobError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// The store a server runs on. An enum rather than a trait object: the set
/// of back ends is closed, and calls stay static.
pub enum Store {
    Sqlite(SqliteStore),
}

impl Store {
    /// Runs one job in the next group commit and waits for it.
    pub async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        match self {
            Store::Sqlite(store) => store.submit(job).await,
        }
    }

    pub fn reader(&self) -> Reader {
        match self {
            Store::Sqlite(store) => Reader::Sqlite(store.reader().clone()),
        }
    }

    /// Commits what is queued and stops taking work.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(store) => store.close().await,
        }
    }
}

/// Read access, cheap to clone.
#[derive(Clone)]
pub enum Reader {
    Sqlite(SqliteReader),
}

impl Reader {
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Reader::Sqlite(r) => r.ping().await,
        }
    }

    pub async fn account(
        &self,
        user: &engine::UserId,
    ) -> Result<Option<LoadedAccount>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.account(user).await,
        }
    }

    pub async fn history(
        &self,
        user: &engine::UserId,
        limit: usize,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.history(user, limit).await,
        }
    }

    pub async fn users_with_firing_triggers(
        &self,
        symbol: engine::Symbol,
        price: engine::Money,
    ) -> Result<Vec<engine::UserId>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.users_with_firing_triggers(symbol, price).await,
        }
    }

    pub async fn armed_symbols(&self) -> Result<Vec<engine::Symbol>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.armed_symbols().await,
        }
    }

    /// The XML audit log up to row `upto_seq`, of one user or of everyone.
    pub fn stream_log(
        &self,
        user: Option<engine::UserId>,
        upto_seq: i64,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, StoreError>> + Send + use<> {
        match self {
            Reader::Sqlite(r) => r.stream_log(user, upto_seq),
        }
    }
}
