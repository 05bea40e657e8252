//! DayTrader's storage. Every command becomes one row of an append-only
//! audit log, written in the same transaction as the account it changed; the
//! row doubles as the command's idempotency record. A group committer puts
//! every command waiting at a moment into one transaction, so durability
//! costs one fsync per batch instead of one per command.
//!
//! The engine decides; the store only loads, applies (through
//! [`batch::apply`], shared by every back end) and writes. Two back ends:
//! SQLite for one process ([`sqlite`]), PostgreSQL for many instances
//! sharing one database ([`postgres`]).

pub mod batch;
mod codec;
mod dump;
pub mod notification;
pub mod postgres;
pub mod record;
pub mod sqlite;
pub mod tokens;
mod write_health;
pub mod xml;

use std::sync::Arc;

pub use batch::{Done, Job, JobError, LoadedAccount, NewCredentials, Work};
pub use notification::{Notification, NotificationKind};
pub use postgres::{Lease, PgOptions, PgReader, PgStore, postgres_url};
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

/// The store a server runs on. An enum rather than a trait object: the set
/// of back ends is closed, and calls stay static.
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Runs one job in the next group commit and waits for it.
    pub async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        match self {
            Store::Sqlite(store) => store.submit(job).await,
            Store::Postgres(store) => store.submit(job).await,
        }
    }

    /// Marks `user`'s notifications read: those among `ids`, or all of them
    /// when `None`. Only that user's notifications are ever touched; returns
    /// how many changed. A change bumps the user's account version, as a
    /// command does, since what the user sees has changed.
    pub async fn mark_notifications_read(
        &self,
        user: &engine::UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(store) => store.mark_notifications_read(user, ids).await,
            Store::Postgres(store) => store.mark_notifications_read(user, ids).await,
        }
    }

    /// Stores a new API token; answers its id.
    pub async fn create_api_token(&self, token: NewApiToken) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(store) => store.create_api_token(token).await,
            Store::Postgres(store) => store.create_api_token(token).await,
        }
    }

    /// Revokes `user`'s token `id`; `false` when `user` has no such working
    /// token (another user's token is never touched).
    pub async fn revoke_api_token(
        &self,
        user: &engine::UserId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => store.revoke_api_token(user, id, now_ms).await,
            Store::Postgres(store) => store.revoke_api_token(user, id, now_ms).await,
        }
    }

    /// Why writes fail, while the last one did (a full disk, a database
    /// that refuses writes); `None` once one succeeds again.
    pub fn writes_failing(&self) -> Option<String> {
        match self {
            Store::Sqlite(store) => store.writes_failing(),
            Store::Postgres(store) => store.writes_failing(),
        }
    }

    /// Writes a probe row, as readiness does while writes fail; a success
    /// clears the failure.
    pub async fn probe_writes(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.probe_writes().await,
            Store::Postgres(store) => store.probe_writes().await,
        }
    }

    pub fn reader(&self) -> Reader {
        match self {
            Store::Sqlite(store) => Reader::Sqlite(store.reader().clone()),
            Store::Postgres(store) => Reader::Postgres(store.reader().clone()),
        }
    }

    /// Commits what is queued and stops taking work.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(store) => store.close().await,
            Store::Postgres(store) => store.close().await,
        }
    }
}

/// Read access, cheap to clone.
#[derive(Clone)]
pub enum Reader {
    Sqlite(SqliteReader),
    Postgres(PgReader),
}

impl Reader {
    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Reader::Sqlite(r) => r.ping().await,
            Reader::Postgres(r) => r.ping().await,
        }
    }

    pub async fn account(
        &self,
        user: &engine::UserId,
    ) -> Result<Option<LoadedAccount>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.account(user).await,
            Reader::Postgres(r) => r.account(user).await,
        }
    }

    /// The user's history lines from their latest `limit` log rows, newest
    /// first.
    pub async fn history(
        &self,
        user: &engine::UserId,
        limit: usize,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        Ok(self.history_page(user, None, limit).await?.items)
    }

    /// The user's history lines from up to `limit` log rows before row
    /// `before_seq` (from the newest when `None`), newest first. A page may
    /// hold fewer lines than rows: quote fetches are not history.
    pub async fn history_page(
        &self,
        user: &engine::UserId,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        match self {
            Reader::Sqlite(r) => r.history_page(user, before_seq, limit).await,
            Reader::Postgres(r) => r.history_page(user, before_seq, limit).await,
        }
    }

    /// The PHC string of the user's password, if they registered on the
    /// web pages (a user created by a first ADD has none).
    pub async fn password_hash(&self, user: &engine::UserId) -> Result<Option<String>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.password_hash(user).await,
            Reader::Postgres(r) => r.password_hash(user).await,
        }
    }

    /// The user's API tokens, newest first, revoked ones included.
    pub async fn api_tokens(&self, user: &engine::UserId) -> Result<Vec<ApiToken>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.api_tokens(user).await,
            Reader::Postgres(r) => r.api_tokens(user).await,
        }
    }

    /// The user whose working (not revoked) token has this hash.
    pub async fn api_token_user(
        &self,
        hash: TokenHash,
    ) -> Result<Option<engine::UserId>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.api_token_user(hash).await,
            Reader::Postgres(r) => r.api_token_user(hash).await,
        }
    }

    /// Users with an armed trigger on `symbol` that `price` fires.
    pub async fn users_with_firing_triggers(
        &self,
        symbol: engine::Symbol,
        price: engine::Money,
    ) -> Result<Vec<engine::UserId>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.users_with_firing_triggers(symbol, price).await,
            Reader::Postgres(r) => r.users_with_firing_triggers(symbol, price).await,
        }
    }

    /// Every symbol with an armed trigger.
    pub async fn armed_symbols(&self) -> Result<Vec<engine::Symbol>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.armed_symbols().await,
            Reader::Postgres(r) => r.armed_symbols().await,
        }
    }

    /// The XML audit log up to row `upto_seq`, of one user or of everyone.
    pub fn stream_log(
        &self,
        user: Option<engine::UserId>,
        upto_seq: i64,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, StoreError>> + Send + use<> {
        use futures::future::Either;
        match self {
            Reader::Sqlite(r) => Either::Left(r.stream_log(user, upto_seq)),
            Reader::Postgres(r) => Either::Right(r.stream_log(user, upto_seq)),
        }
    }

    /// Up to `limit` rows of the whole log after row `after_seq`, in `seq`
    /// order. Together with [`Reader::accounts_page`], what an audit needs
    /// to replay the log and compare the result with the stored accounts.
    pub async fn log_page(&self, after_seq: i64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.log_page(after_seq, limit).await,
            Reader::Postgres(r) => r.log_page(after_seq, limit).await,
        }
    }

    /// Up to `limit` stored accounts after `after_user` (from the first when
    /// `None`), ordered by user id in byte order (as [`engine::UserId`]'s
    /// `Ord`), on every back end.
    pub async fn accounts_page(
        &self,
        after_user: Option<&engine::UserId>,
        limit: usize,
    ) -> Result<Vec<(engine::UserId, LoadedAccount)>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.accounts_page(after_user, limit).await,
            Reader::Postgres(r) => r.accounts_page(after_user, limit).await,
        }
    }

    /// The user's notifications, newest first: up to `limit` of those with
    /// an id below `before_id` (from the newest when `None`).
    pub async fn notifications(
        &self,
        user: &engine::UserId,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.notifications(user, before_id, limit).await,
            Reader::Postgres(r) => r.notifications(user, before_id, limit).await,
        }
    }

    /// How many of the user's notifications are unread.
    pub async fn unread_notifications(&self, user: &engine::UserId) -> Result<u64, StoreError> {
        match self {
            Reader::Sqlite(r) => r.unread_notifications(user).await,
            Reader::Postgres(r) => r.unread_notifications(user).await,
        }
    }
}
