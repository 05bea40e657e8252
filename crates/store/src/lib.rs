//! DayTrader's storage. Every command becomes one row of an append-only
//! audit log, written in the same transaction as the account it changed; the
//! row doubles as the command's idempotency record. A group committer puts
//! every command waiting at a moment into one transaction, so durability
//! costs one fsync per batch instead of one per command.
//!
//! Where business execution happens: [`batch::apply`] runs each job of a
//! batch through the engine (`engine::execute`, `Account::on_price`) and
//! turns what it did into log rows, account writes and notifications. It
//! is pure and shared by every back end; the engine decides, the store only
//! loads, applies and writes. Two back ends behind one contract
//! ([`Reads`], [`Writes`]): SQLite for one process ([`sqlite`]),
//! PostgreSQL for many instances sharing one database ([`postgres`]).
//! [`audit`] replays the log through the engine to check the stored state.

pub mod audit;
mod backend;
pub mod batch;
mod codec;
mod dump;
pub mod notification;
pub mod postgres;
mod prices;
pub mod record;
pub mod sqlite;
pub mod tokens;
mod write_health;
pub mod xml;

use std::sync::Arc;

pub use backend::{Reader, Reads, Store, Writes};
pub use batch::{Done, Job, JobError, LoadedAccount, NewCredentials, Work};
pub use notification::{Notification, NotificationKind};
pub use postgres::{Lease, PgOptions, PgReader, PgStore, postgres_url};
pub use prices::{PRICE_HISTORY_LIMIT, PricePoint, SummaryExtras, SummaryStamp};
pub use record::{Balance, HistoryItem, HistoryPage, LogRow, QuoteFetch, QuoteUse, Record};
pub use sqlite::{SqliteOptions, SqliteReader, SqliteStore};
pub use tokens::{ApiToken, NewApiToken, TokenHash};

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

impl StoreError {
    /// The same error, for the next of several callers a failed batch
    /// answers (driver errors are not `Clone`, so errors are kept as text).
    pub(crate) fn for_another_caller(&self) -> StoreError {
        match self {
            StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
            StoreError::Closed => StoreError::Closed,
            StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
            StoreError::Job(error) => StoreError::Job(error.clone()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}
