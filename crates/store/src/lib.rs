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
