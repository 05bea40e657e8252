//! The contract every back end keeps: [`Reads`] (what can be read, while
//! the store runs or beside it) and [`Writes`] (the group commit and the
//! few writes outside it). SQLite ([`crate::sqlite`]) and PostgreSQL
//! ([`crate::postgres`]) implement both; [`Store`] and [`Reader`] pick one
//! at start-up and dispatch to it, statically (an enum over a closed set,
//! not a trait object).
//!
//! Each method is documented once, here; the back ends only say how.

use std::collections::HashMap;
use std::future::Future;

use bytes::Bytes;
use engine::{Money, Symbol, UserId};
use futures::Stream;

use crate::StoreError;
use crate::batch::{Done, Job, LoadedAccount};
use crate::notification::Notification;
use crate::postgres::{PgReader, PgStore};
use crate::prices::{PricePoint, SummaryExtras, SummaryStamp};
use crate::record::{HistoryItem, HistoryPage, LogRow};
use crate::sqlite::{SqliteReader, SqliteStore};
use crate::tokens::{ApiToken, NewApiToken, TokenHash};

/// Read access, cheap to clone.
pub trait Reads: Clone + Send + Sync + 'static {
    /// Whether the database answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn account(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<LoadedAccount>, StoreError>> + Send;

    /// The version of the user's account (`None` without one): every
    /// change of what the user sees moves it on, in the same transaction
    /// as the change, so a view kept under a version is current as long
    /// as the version is.
    fn account_version(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// The user's history lines from up to `limit` log rows before row
    /// `before_seq` (from the newest when `None`), newest first. A page may
    /// hold fewer lines than rows: quote fetches are not history.
    fn history_page(
        &self,
        user: &UserId,
        before_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<HistoryPage, StoreError>> + Send {
        async move {
            let rows = self
                .user_log(user, before_seq, limit.saturating_add(1))
                .await?;
            Ok(HistoryPage::of(rows, limit))
        }
    }

    /// Up to `limit` of the user's log rows before row `before_seq` (from
    /// the newest when `None`), newest first.
    fn user_log(
        &self,
        user: &UserId,
        before_seq: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LogRow>, StoreError>> + Send;

    /// The user's history lines from their latest `limit` log rows, newest
    /// first.
    fn history(
        &self,
        user: &UserId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<HistoryItem>, StoreError>> + Send {
        async move { Ok(self.history_page(user, None, limit).await?.items) }
    }

    /// The PHC string of the user's password, if they registered on the
    /// web pages (a user created by a first ADD has none).
    fn password_hash(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The user's API tokens, newest first, revoked ones included.
    fn api_tokens(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Vec<ApiToken>, StoreError>> + Send;

    /// The user whose working (not revoked) token has this hash.
    fn api_token_user(
        &self,
        hash: TokenHash,
    ) -> impl Future<Output = Result<Option<UserId>, StoreError>> + Send;

    /// Users with an armed trigger on `symbol` that `price` fires.
    fn users_with_firing_triggers(
        &self,
        symbol: Symbol,
        price: Money,
    ) -> impl Future<Output = Result<Vec<UserId>, StoreError>> + Send;

    /// Every symbol with an armed trigger.
    fn armed_symbols(&self) -> impl Future<Output = Result<Vec<Symbol>, StoreError>> + Send;

    /// Up to `limit` users with a pending order that runs out at `now_ms`
    /// or before, the longest due first: what the expiry task expires.
    /// Read through an index on each account's next expiry, never by
    /// scanning the accounts.
    fn users_with_orders_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<UserId>, StoreError>> + Send;

    /// The XML audit log up to row `upto_seq`, of one user or of everyone:
    /// read a page at a time and sent in chunks through a small channel,
    /// so memory stays flat whatever the log's size, and a client that
    /// stops reading stops the reading.
    fn stream_log(
        &self,
        user: Option<UserId>,
        upto_seq: i64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static;

    /// Up to `limit` rows of the whole log after row `after_seq`, in `seq`
    /// order. Together with [`Reads::accounts_page`], what an audit needs
    /// to replay the log and compare the result with the stored accounts.
    fn log_page(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LogRow>, StoreError>> + Send;

    /// Up to `limit` stored accounts after `after_user` (from the first when
    /// `None`), ordered by user id in byte order (as [`UserId`]'s `Ord`), on
    /// every back end.
    fn accounts_page(
        &self,
        after_user: Option<&UserId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(UserId, LoadedAccount)>, StoreError>> + Send;

    /// The user's notifications, newest first: up to `limit` of those with
    /// an id below `before_id` (from the newest when `None`).
    fn notifications(
        &self,
        user: &UserId,
        before_id: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Notification>, StoreError>> + Send;

    /// The price history of `symbol` (`crate::prices`), oldest first:
    /// every point kept, or those recorded after `since_ms`.
    fn price_history(
        &self,
        symbol: Symbol,
        since_ms: Option<i64>,
    ) -> impl Future<Output = Result<Vec<PricePoint>, StoreError>> + Send;

    /// The newest point of the price history of each of `symbols`: the
    /// last price the system fetched. A symbol never fetched is absent.
    fn latest_prices(
        &self,
        symbols: Vec<Symbol>,
    ) -> impl Future<Output = Result<HashMap<Symbol, PricePoint>, StoreError>> + Send;

    /// The user's account version, the price generation and, unless that
    /// is `known_generation`, the newest price point of each of `symbols`
    /// (a symbol never fetched is absent), read together in one round
    /// trip: what a summary kept under a version and prices is checked
    /// against on every read of it. `None` without an account.
    fn summary_stamp(
        &self,
        user: &UserId,
        symbols: Vec<Symbol>,
        known_generation: Option<i64>,
    ) -> impl Future<Output = Result<Option<SummaryStamp>, StoreError>> + Send;

    /// The newest price point of each of `symbols` (a symbol never fetched
    /// is absent) and the user's history lines from their latest `limit`
    /// log rows, newest first: what a summary shows beside the account,
    /// read together, in one snapshot and one trip to the database (a
    /// summary is answered after every DISPLAY_SUMMARY).
    fn summary_extras(
        &self,
        user: &UserId,
        symbols: Vec<Symbol>,
        limit: usize,
    ) -> impl Future<Output = Result<SummaryExtras, StoreError>> + Send;

    /// How many of the user's notifications are unread.
    fn unread_notifications(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Writes. Commands, trigger executions, quote fetches and registrations
/// go through [`Writes::submit`]: the group commit, one atomic step each.
pub trait Writes: Send + Sync {
    /// Runs one job in the next group commit and waits for it: the answer
    /// means the step and its audit entries are committed and synced.
    fn submit(&self, job: Job) -> impl Future<Output = Result<Done, StoreError>> + Send;

    /// Marks `user`'s notifications read: those among `ids`, or all of them
    /// when `None`. Only that user's notifications are ever touched; returns
    /// how many changed. A change bumps the user's account version, as a
    /// command does, since what the user sees has changed.
    fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Stores a new API token; answers its id.
    fn create_api_token(
        &self,
        token: NewApiToken,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Revokes `user`'s token `id`; `false` when `user` has no such working
    /// token (another user's token is never touched).
    fn revoke_api_token(
        &self,
        user: &UserId,
        id: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Sets `user`'s password (a PHC string), replacing any they had: a
    /// trader changing theirs, or an account made through the API given
    /// its first. The caller checks the account exists.
    fn set_password(
        &self,
        user: &UserId,
        hash: String,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Why writes fail, while the last one did (a full disk, a database
    /// that refuses writes); `None` once one succeeds again. How each
    /// back end's batches end is noted by [`crate::write_health`].
    fn writes_failing(&self) -> Option<String>;

    /// Writes this instance's probe row, as readiness does while writes
    /// fail; a success clears the failure.
    fn probe_writes(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits what is queued and stops taking work. Jobs submitted
    /// afterwards fail with [`StoreError::Closed`]; reads go on.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The store a server runs on.
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Read access to whichever back end the store runs on.
#[derive(Clone)]
pub enum Reader {
    Sqlite(SqliteReader),
    Postgres(PgReader),
}

impl Store {
    /// Read access to the same database.
    pub fn reader(&self) -> Reader {
        match self {
            Store::Sqlite(store) => Reader::Sqlite(store.reader().clone()),
            Store::Postgres(store) => Reader::Postgres(store.reader().clone()),
        }
    }
}

/// Implements `$trait` for `$enum` by handing each call to the back end
/// the value holds. Each async method is listed once, on one line;
/// anything else the trait needs follows them as written.
macro_rules! dispatch {
    (
        impl $trait:ident for $enum:ident {
            $(async fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*
        }
        $($other:item)*
    ) => {
        impl $trait for $enum {
            $(async fn $name(&self, $($arg: $ty),*) -> $ret {
                match self {
                    $enum::Sqlite(it) => it.$name($($arg),*).await,
                    $enum::Postgres(it) => it.$name($($arg),*).await,
                }
            })*
            $($other)*
        }
    };
}

dispatch! {
    impl Reads for Reader {
        async fn ping() -> Result<(), StoreError>;
        async fn account(user: &UserId) -> Result<Option<LoadedAccount>, StoreError>;
        async fn account_version(user: &UserId) -> Result<Option<i64>, StoreError>;
        async fn user_log(user: &UserId, before_seq: Option<i64>, limit: usize) -> Result<Vec<LogRow>, StoreError>;
        async fn password_hash(user: &UserId) -> Result<Option<String>, StoreError>;
        async fn api_tokens(user: &UserId) -> Result<Vec<ApiToken>, StoreError>;
        async fn api_token_user(hash: TokenHash) -> Result<Option<UserId>, StoreError>;
        async fn users_with_firing_triggers(symbol: Symbol, price: Money) -> Result<Vec<UserId>, StoreError>;
        async fn armed_symbols() -> Result<Vec<Symbol>, StoreError>;
        async fn users_with_orders_due(now_ms: i64, limit: usize) -> Result<Vec<UserId>, StoreError>;
        async fn log_page(after_seq: i64, limit: usize) -> Result<Vec<LogRow>, StoreError>;
        async fn accounts_page(after_user: Option<&UserId>, limit: usize) -> Result<Vec<(UserId, LoadedAccount)>, StoreError>;
        async fn notifications(user: &UserId, before_id: Option<i64>, limit: usize) -> Result<Vec<Notification>, StoreError>;
        async fn unread_notifications(user: &UserId) -> Result<u64, StoreError>;
        async fn price_history(symbol: Symbol, since_ms: Option<i64>) -> Result<Vec<PricePoint>, StoreError>;
        async fn latest_prices(symbols: Vec<Symbol>) -> Result<HashMap<Symbol, PricePoint>, StoreError>;
        async fn summary_stamp(user: &UserId, symbols: Vec<Symbol>, known_generation: Option<i64>) -> Result<Option<SummaryStamp>, StoreError>;
        async fn summary_extras(user: &UserId, symbols: Vec<Symbol>, limit: usize) -> Result<SummaryExtras, StoreError>;
    }

    fn stream_log(
        &self,
        user: Option<UserId>,
        upto_seq: i64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
        use futures::future::Either;
        match self {
            Reader::Sqlite(r) => Either::Left(r.stream_log(user, upto_seq)),
            Reader::Postgres(r) => Either::Right(r.stream_log(user, upto_seq)),
        }
    }
}

dispatch! {
    impl Writes for Store {
        async fn submit(job: Job) -> Result<Done, StoreError>;
        async fn mark_notifications_read(user: &UserId, ids: Option<Vec<i64>>) -> Result<u64, StoreError>;
        async fn create_api_token(token: NewApiToken) -> Result<i64, StoreError>;
        async fn revoke_api_token(user: &UserId, id: i64, now_ms: i64) -> Result<bool, StoreError>;
        async fn set_password(user: &UserId, hash: String, now_ms: i64) -> Result<(), StoreError>;
        async fn probe_writes() -> Result<(), StoreError>;
        async fn close() -> ();
    }

    fn writes_failing(&self) -> Option<String> {
        match self {
            Store::Sqlite(s) => s.writes_failing(),
            Store::Postgres(s) => s.writes_failing(),
        }
    }
}
