//! The embedded back end: one SQLite file in the data directory, in WAL mode
//! with full sync, written by one committer thread and read by a small pool
//! of read-only connections.

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

use self::committer::{Committer, Msg, decode_account, side_code};
use crate::batch::{Done, GLOBAL_USER, Job, LoadedAccount};
use crate::record::{HistoryItem, LogRow, Record};
use crate::{Clock, StoreError, xml};

/// The database file inside the data directory.
pub const DB_FILE: &str = "daytrader.sqlite3";
/// Held (flock) by the serving process, so two servers never share a file.
const LOCK_FILE: &str = "daytrader.lock";
/// Jobs waiting for the committer before callers wait for room.
const QUEUE: usize = 16_384;
/// Rows read per query when streaming the log.
const PAGE: i64 = 1_000;
/// Bytes of XML gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

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
    committer: Mutex<Option<JoinHandle<()>>>,
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
        let next_seq: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM log", [], |r| {
                r.get(0)
            })?;
        let (queue, rx) = mpsc::channel(QUEUE);
        let committer = Committer {
            conn,
            server: options.server,
            clock: options.clock,
            max_batch: options.max_batch.max(1),
            next_seq,
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
            committer: Mutex::new(Some(handle)),
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

    /// Runs `f` on a pooled read-only connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = this.pool.lock().expect("not poisoned").pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => this.connect()?,
            };
            let result = f(&conn);
            this.pool.lock().expect("not poisoned").push(conn);
            result
        })
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

    /// The user's latest `limit` history lines, newest first.
    pub async fn history(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, ts_ms, server, user_id, txn, body FROM log WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![user.as_str(), limit as i64], read_row)?;
            let mut items = Vec::with_capacity(limit);
            for row in rows {
                if let Some(item) = row??.history_item() {
                    items.push(item);
                }
            }
            Ok(items)
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
    /// everyone. Rows are read a page at a time and sent in chunks through a
    /// small channel, so memory stays flat whatever the log's size, and a
    /// client that stops reading stops the reading.
    pub fn stream_log(
        &self,
        user: Option<UserId>,
        upto_seq: i64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + use<> {
        let (tx, rx) = mpsc::channel::<Result<Bytes, StoreError>>(4);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = this.render_log(user.as_ref(), upto_seq, &tx) {
                let _ = tx.blocking_send(Err(error));
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    fn render_log(
        &self,
        user: Option<&UserId>,
        upto_seq: i64,
        tx: &mpsc::Sender<Result<Bytes, StoreError>>,
    ) -> Result<(), StoreError> {
        let conn = self.connect()?;
        let mut stmt = conn.prepare(match user {
            Some(_) => {
                "SELECT seq, ts_ms, server, user_id, txn, body FROM log
                 WHERE user_id = ?3 AND seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?4"
            }
            None => {
                "SELECT seq, ts_ms, server, user_id, txn, body FROM log
                 WHERE seq > ?1 AND seq <= ?2 AND ?3 IS NOT NULL ORDER BY seq LIMIT ?4"
            }
        })?;
        let user_key = user.map_or(GLOBAL_USER, UserId::as_str);
        let mut out = String::with_capacity(CHUNK + 4096);
        out.push_str(xml::HEADER);
        let mut after = 0i64;
        loop {
            let mut rows = stmt.query(params![after, upto_seq, user_key, PAGE])?;
            let mut count = 0;
            while let Some(row) = rows.next()? {
                let row = read_row(row)??;
                after = row.seq;
                count += 1;
                xml::render_row(&row, &mut out);
                if out.len() >= CHUNK
                    && tx
                        .blocking_send(Ok(Bytes::from(std::mem::take(&mut out))))
                        .is_err()
                {
                    return Ok(()); // the client went away
                }
            }
            if count < PAGE {
                break;
            }
        }
        out.push_str(xml::FOOTER);
        let _ = tx.blocking_send(Ok(Bytes::from(out)));
        Ok(())
    }
}

fn parse_user(text: &str) -> Result<UserId, StoreError> {
    UserId::parse(text).map_err(|_| StoreError::Corrupt(format!("stored user id {text:?}")))
}

/// Reads a `seq, ts_ms, server, user_id, txn, body` row.
fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LogRow, StoreError>> {
    let seq: i64 = row.get(0)?;
    let user: String = row.get(3)?;
    let body: Vec<u8> = row.get(5)?;
    let ts_ms = row.get(1)?;
    let server = row.get(2)?;
    let txn = row.get(4)?;
    Ok((|| {
        let user = if user == GLOBAL_USER {
            None
        } else {
            Some(parse_user(&user)?)
        };
        let record = Record::decode(&body)
            .map_err(|e| StoreError::Corrupt(format!("log row {seq}: {e}")))?;
        Ok(LogRow {
            seq,
            ts_ms,
            server,
            user,
            txn,
            record,
        })
    })())
}
