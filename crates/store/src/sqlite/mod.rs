//! The embedded back end: one SQLite file in the data directory, in WAL mode
//! with full sync, written by one committer thread and read by a small pool
//! of read-only connections.

mod checkpointer;
mod committer;
mod latest_prices;
mod reader;
mod schema;
mod writer;

pub use self::reader::SqliteReader;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use engine::UserId;
use fs2::FileExt;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use self::checkpointer::Checkpointer;
use self::committer::{Committer, MarkRead, Msg, TokenWrite};
use self::latest_prices::LatestPrices;
use crate::backend::Writes;
use crate::batch::{Done, Job};
use crate::tokens::{NewApiToken, TokenChange};
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
        // The committer's applier reads what is not in its memory through
        // a connection of its own (the writer's is busy committing).
        let read = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let health = WriteHealth::default();
        let latest_prices = LatestPrices::new(reader::price_generation(&conn)?);
        let committer = Committer {
            conn,
            read,
            server: options.server,
            clock: options.clock,
            max_batch: options.max_batch.max(1),
            next_seq,
            accounts: Default::default(),
            health: health.clone(),
            latest_prices: latest_prices.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("sqlite-committer".into())
            .spawn(move || committer.run(rx))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the committer thread: {e}"))
            })?;
        Ok(SqliteStore {
            reader: SqliteReader::new(path, Some(latest_prices)),
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

    /// Sends the committer a write and waits for its answer.
    async fn ask<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Msg,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(message(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn change_token(&self, change: TokenChange) -> Result<i64, StoreError> {
        self.ask(|reply| Msg::Token(TokenWrite { change, reply }))
            .await
    }
}

/// Every write goes through the committer thread, the database's only
/// writer: commands in its group commit, the rest in the same transactions.
impl Writes for SqliteStore {
    async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        self.ask(|reply| Msg::Job(Box::new(job), reply)).await
    }

    async fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64, StoreError> {
        let user = user.clone();
        self.ask(|reply| Msg::MarkRead(MarkRead { user, ids, reply }))
            .await
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<i64, StoreError> {
        self.change_token(TokenChange::Create(token)).await
    }

    async fn revoke_api_token(
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

    async fn set_password(
        &self,
        user: &UserId,
        hash: String,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let change = TokenChange::SetPassword {
            user: user.clone(),
            hash,
            now_ms,
        };
        self.change_token(change).await.map(|_| ())
    }

    fn writes_failing(&self) -> Option<String> {
        self.health.failing()
    }

    /// The probe row goes through the committer, as a batch would.
    async fn probe_writes(&self) -> Result<(), StoreError> {
        self.ask(Msg::Probe).await
    }

    async fn close(&self) {
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
