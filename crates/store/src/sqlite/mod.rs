//! The embedded back end: one SQLite file in the data directory, in WAL mode
//! with full sync, written by one committer thread and read by a small pool
//! of read-only connections.

mod checkpointer;
mod committer;
mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use engine::{Money, Symbol, UserId};
use fs2::FileExt;
use futures::Stream;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use self::checkpointer::Checkpointer;
use self::committer::{Committer, MarkRead, Msg, TokenWrite};
use crate::batch::{Done, Job, LoadedAccount};
use crate::codec::{
    LogColumns, NotificationColumns, decode_account, limit_param, parse_user, side_code,
    user_column,
};
use crate::dump::{self, LogQuery};
use crate::notification::Notification;
use crate::record::{HistoryPage, LogRow};
use crate::tokens::{ApiToken, NewApiToken, TokenChange, TokenHash};
use crate::write_health::WriteHealth;
use crate::{Clock, StoreError};

/// The database file inside the data directory.
pub const DB_FILE: &str = "daytrader.sqlite3";
/// Held (flock) by the serving process, so two servers never share a file.
const LOCK_FILE: &str = "daytrader.lock";
/// Writes waiting for the committer before callers wait for room.
const QUEUE: usize = 16_384;

pub struct SqliteOptions {
    pub data_dir: PathBuf,
    /// This instance's id, recorded as `server` on every row it writes.
    pub server: String,
    pub clock: Clock,
    /// The most jobs in one transaction.
    pub max_batch: usize,
}

/// Read access to a DayTrader SQLite database, usable while a server runs.
#[derive(Clone)]
pub struct SqliteReader {
    path: Arc<PathBuf>,
    pool: Arc<Mutex<Vec<Connection>>>,
}

/// The embedded store: reads plus the committer.
pub struct SqliteStore {
    reader: SqliteReader,
    queue: mpsc::Sender<Msg>,
    health: WriteHealth,
    committer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, runs
    /// migrations and starts the committer.
    pub fn open(options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                options.data_dir.display()
            ))
        })?;
        let lock = lock_data_dir(&options.data_dir)?;
        let path = options.data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        // Full sync: a 200 means the change survives a power cut, and group
        // commit makes that one fsync per batch rather than per command.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA cache_size = -65536;
             PRAGMA temp_store = MEMORY;",
        )?;
        schema::migrate(&mut conn)?;
        // Checkpoints mostly run on their own thread (checkpointer.rs). The
        // log can only start over at a moment when everything in it has
        // been copied back, and with a writer this busy only the writer
        // itself sees such a moment: so the committer still checkpoints,
        // rarely (every 4,000 pages, 16 MB) and cheaply (the other thread
        // has copied all but the last few pages). Once copied back, the
        // log file is cut to 64 MB.
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 4000;
             PRAGMA journal_size_limit = 67108864;",
        )?;
        let checkpointer = Checkpointer::start(&path)?;
        let next_seq: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM log", [], |r| {
                r.get(0)
            })?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let health = WriteHealth::default();
        let committer = Committer {
            conn,
            server: options.server,
            clock: options.clock,
            max_batch: options.max_batch.max(1),
            next_seq,
            accounts: Default::default(),
            health: health.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("sqlite-committer".into())
            .spawn(move || committer.run(rx))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the committer thread: {e}"))
            })?;
        Ok(SqliteStore {
            reader: SqliteReader::new(path),
            queue,
            health,
            committer: Mutex::new(Some(handle)),
            checkpointer: Mutex::new(Some(checkpointer)),
            _lock: lock,
        })
    }

    pub fn reader(&self) -> &SqliteReader {
        &self.reader
    }

    /// Runs one job in the next batch and waits for its commit.
    pub async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Msg::Job(Box::new(job), reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Marks `user`'s notifications read: those among `ids`, or all of them.
    /// Only that user's rows are touched. Returns how many changed. Goes
    /// through the committer, the database's only writer.
    pub async fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let mark = MarkRead {
            user: user.clone(),
            ids,
            reply,
        };
        self.queue
            .send(Msg::MarkRead(mark))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores a new API token; answers its id.
    pub async fn create_api_token(&self, token: NewApiToken) -> Result<i64, StoreError> {
        self.change_token(TokenChange::Create(token)).await
    }

    /// Revokes `user`'s token `id`; `false` when no such working token of
    /// theirs exists (another user's token is never touched).
    pub async fn revoke_api_token(
        &self,
        user: &UserId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let change = TokenChange::Revoke {
            user: user.clone(),
            id,
            now_ms,
        };
        Ok(self.change_token(change).await? > 0)
    }

    /// Goes through the committer, the database's only writer.
    async fn change_token(&self, change: TokenChange) -> Result<i64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Msg::Token(TokenWrite { change, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Why writes fail, while the last one did.
    pub fn writes_failing(&self) -> Option<String> {
        self.health.failing()
    }

    /// Writes the probe row through the committer, as a batch would: `Ok`
    /// when writes go through again.
    pub async fn probe_writes(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Msg::Probe(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits everything queued so far, then stops the committer. Jobs
    /// submitted afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Msg::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self.committer.lock().expect("not poisoned").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        let checkpointer = self.checkpointer.lock().expect("not poisoned").take();
        if let Some(mut checkpointer) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || checkpointer.stop()).await;
        }
    }
}

fn lock_data_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))?;
    file.try_lock_exclusive().map_err(|_| {
        StoreError::Unavailable(format!(
            "another DayTrader process is using the data directory {}; stop it or choose another DAYTRADER_DATA_DIR",
            dir.display()
        ))
    })?;
    Ok(file)
}

impl SqliteReader {
    /// Read-only access to the database in `data_dir`, for tools that run
    /// beside a server (audit, backups).
    pub fn open(data_dir: &Path) -> Result<SqliteReader, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "there is no DayTrader database at {}",
                path.display()
            )));
        }
        Ok(SqliteReader::new(path))
    }

    fn new(path: PathBuf) -> SqliteReader {
        SqliteReader {
            path: Arc::new(path),
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            self.path.as_path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled read-only connection, on this thread.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().expect("not poisoned").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = f(&conn);
        self.pool.lock().expect("not poisoned").push(conn);
        result
    }

    /// Runs `f` on a pooled read-only connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with_conn(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("a read task failed: {e}")))?
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    pub async fn account(&self, user: &UserId) -> Result<Option<LoadedAccount>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            let found = conn
                .prepare_cached("SELECT state, version FROM accounts WHERE user_id = ?1")?
                .query_row([user.as_str()], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get(1)?))
                })
                .optional()?;
            found
                .map(|(state, version)| {
                    Ok(LoadedAccount {
                        account: decode_account(&user, &state)?,
                        version,
                    })
                })
                .transpose()
        })
        .await
    }

    /// Up to `limit` of the user's history lines from the rows before
    /// `before_seq` (from the newest when `None`), newest first.
    pub async fn history_page(
        &self,
        user: &UserId,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, ts_ms, server, user_id, txn, body FROM log
                 WHERE user_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    user.as_str(),
                    before_seq.unwrap_or(i64::MAX),
                    limit_param(limit.saturating_add(1))
                ],
                read_row,
            )?;
            let mut page = Vec::with_capacity(limit + 1);
            for row in rows {
                page.push(row??);
            }
            Ok(HistoryPage::of(page, limit))
        })
        .await
    }

    /// The PHC string of the user's password, if they registered.
    pub async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT password_hash FROM credentials WHERE user_id = ?1")?
                .query_row([user.as_str()], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    /// The user's API tokens, newest first, revoked ones included.
    pub async fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiToken>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, created_ms, revoked_ms FROM api_tokens
                 WHERE user_id = ?1 ORDER BY id DESC",
            )?;
            let tokens = stmt.query_map([user.as_str()], |row| {
                Ok(ApiToken {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    created_ms: row.get(2)?,
                    revoked_ms: row.get(3)?,
                })
            })?;
            Ok(tokens.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The user a working (not revoked) token acts for.
    pub async fn api_token_user(&self, hash: TokenHash) -> Result<Option<UserId>, StoreError> {
        self.read(move |conn| {
            let user: Option<String> = conn
                .prepare_cached(
                    "SELECT user_id FROM api_tokens WHERE token_hash = ?1 AND revoked_ms IS NULL",
                )?
                .query_row([hash.as_slice()], |row| row.get(0))
                .optional()?;
            user.as_deref().map(parse_user).transpose()
        })
        .await
    }

    /// Users with an armed trigger on `symbol` that `price` fires.
    pub async fn users_with_firing_triggers(
        &self,
        symbol: Symbol,
        price: Money,
    ) -> Result<Vec<UserId>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT user_id FROM armed_triggers WHERE symbol = ?1
                 AND ((side = ?2 AND trigger_price >= ?4) OR (side = ?3 AND trigger_price <= ?4))",
            )?;
            let buy = side_code(engine::TriggerSide::Buy);
            let sell = side_code(engine::TriggerSide::Sell);
            let users = stmt
                .query_map(params![symbol.as_str(), buy, sell, price.cents()], |r| {
                    r.get::<_, String>(0)
                })?;
            users
                .map(|u| parse_user(&u?))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    }

    /// Every symbol with an armed trigger.
    pub async fn armed_symbols(&self) -> Result<Vec<Symbol>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT DISTINCT symbol FROM armed_triggers ORDER BY symbol")?;
            let symbols = stmt.query_map([], |r| r.get::<_, String>(0))?;
            symbols
                .map(|s| {
                    let s = s?;
                    Symbol::parse(&s)
                        .map_err(|_| StoreError::Corrupt(format!("armed trigger symbol {s:?}")))
                })
                .collect()
        })
        .await
    }

    /// The audit log as XML, rows up to `upto_seq`, of one user or of
    /// everyone: read a page of 1,000 rows at a time and sent in 64 KiB
    /// chunks through a small channel, so memory stays flat whatever the
    /// log's size, and a client that stops reading stops the reading.
    pub fn stream_log(
        &self,
        user: Option<UserId>,
        upto_seq: i64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + use<> {
        let this = self.clone();
        // Each page on a pooled connection, on the dump's own thread.
        dump::stream(
            move |query| this.with_conn(|conn| read_log_rows(conn, &query)),
            user,
            upto_seq,
        )
    }

    /// Up to `limit` rows of the whole log after row `after_seq`, in `seq`
    /// order: the audit reads the log with these.
    pub async fn log_page(&self, after_seq: i64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        self.log_rows(LogQuery {
            user: None,
            after_seq,
            upto_seq: i64::MAX,
            limit,
        })
        .await
    }

    async fn log_rows(&self, query: LogQuery) -> Result<Vec<LogRow>, StoreError> {
        self.read(move |conn| read_log_rows(conn, &query)).await
    }

    /// Up to `limit` accounts after `after_user`, in user id order (byte
    /// order, as [`UserId`]'s `Ord`).
    pub async fn accounts_page(
        &self,
        after_user: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, LoadedAccount)>, StoreError> {
        let after = after_user.map(|u| u.as_str().to_owned());
        self.read(move |conn| {
            // SQLite compares TEXT by bytes (BINARY collation); every user
            // id sorts after ''.
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, state, version FROM accounts WHERE user_id > ?1 ORDER BY user_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![after.as_deref().unwrap_or(""), limit_param(limit)],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )?;
            let mut page = Vec::new();
            for row in rows {
                let (user, state, version) = row?;
                let user = parse_user(&user)?;
                let account = decode_account(&user, &state)?;
                page.push((user, LoadedAccount { account, version }));
            }
            Ok(page)
        })
        .await
    }

    /// The user's notifications, newest first: up to `limit` of those with
    /// an id below `before_id` (all when `None`).
    pub async fn notifications(
        &self,
        user: &UserId,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, user_id, created_ms, kind, message, txn, read FROM notifications
                 WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    user.as_str(),
                    before_id.unwrap_or(i64::MAX),
                    limit_param(limit)
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, bool>(6)?,
                    ))
                },
            )?;
            let mut page = Vec::new();
            for row in rows {
                let (id, user, created_ms, kind, message, txn, read) = row?;
                let columns = NotificationColumns {
                    id,
                    user: &user,
                    created_ms,
                    kind: &kind,
                    message,
                    txn,
                    read,
                };
                page.push(columns.decode()?);
            }
            Ok(page)
        })
        .await
    }

    /// How many of the user's notifications are unread.
    pub async fn unread_notifications(&self, user: &UserId) -> Result<u64, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            let count: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM notifications WHERE user_id = ?1 AND read = 0",
                )?
                .query_row([user.as_str()], |row| row.get(0))?;
            Ok(count as u64)
        })
        .await
    }
}

/// Reads a `seq, ts_ms, server, user_id, txn, body` row.
/// The rows of the log `query` asks for, in `seq` order.
fn read_log_rows(conn: &Connection, query: &LogQuery) -> Result<Vec<LogRow>, StoreError> {
    let mut stmt = conn.prepare_cached(match query.user {
        Some(_) => {
            "SELECT seq, ts_ms, server, user_id, txn, body FROM log
             WHERE user_id = ?3 AND seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?4"
        }
        None => {
            "SELECT seq, ts_ms, server, user_id, txn, body FROM log
             WHERE seq > ?1 AND seq <= ?2 AND ?3 IS NOT NULL ORDER BY seq LIMIT ?4"
        }
    })?;
    let rows = stmt.query_map(
        params![
            query.after_seq,
            query.upto_seq,
            user_column(query.user.as_ref()),
            limit_param(query.limit)
        ],
        read_row,
    )?;
    let mut page = Vec::new();
    for row in rows {
        page.push(row??);
    }
    Ok(page)
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LogRow, StoreError>> {
    let user: String = row.get(3)?;
    let body: Vec<u8> = row.get(5)?;
    let columns = LogColumns {
        seq: row.get(0)?,
        ts_ms: row.get(1)?,
        server: row.get(2)?,
        user: &user,
        txn: row.get(4)?,
        body: &body,
    };
    Ok(columns.decode())
}
