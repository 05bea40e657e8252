//! The connection pool, and whether the database is usable right now.
//!
//! A store starts unready and becomes ready once PostgreSQL answers and the
//! schema is migrated. Whenever a connection-level failure shows the
//! database is gone, it turns unready again and one background task probes
//! with exponential backoff until it answers. While unready, writes and
//! reads fail at once with [`StoreError::Unavailable`] (a 503) instead of
//! each waiting out a connect timeout.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::{PgOptions, schema};
use crate::StoreError;

/// The first wait between attempts to reach the database; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A pooled connection idle for longer than this is pinged before use, so
/// that connections left over from before a database restart are replaced
/// instead of failing a batch; busy connections skip the round trip.
const PING_IF_IDLE: Duration = Duration::from_secs(1);
/// Server-side bound on any statement from the pool (a lock wait included),
/// so that no request can hang on the database.
const STATEMENT_TIMEOUT: &str = "15s";

/// The pool and its health, shared by the store, its committers and its
/// readers.
#[derive(Clone)]
pub(crate) struct Db(Arc<Inner>);

struct Inner {
    pool: PgPool,
    /// The committers' connections: plans made once per connection (see
    /// [`Db::start`]).
    commit_pool: PgPool,
    /// For dedicated connections (migrations, leadership): without the
    /// pool's statement timeout, which a migration may need to exceed.
    connect: PgConnectOptions,
    acquire_timeout: Duration,
    /// Why the URL could not be used; such a store never becomes ready.
    config_error: Option<String>,
    ready: AtomicBool,
    migrated: AtomicBool,
    /// Whether a task is bringing the database back; guards `ready` too, so
    /// that a failure and a recovery cannot interleave.
    recovering: Mutex<bool>,
    /// The last reason the database was unusable, for error messages.
    why: Mutex<String>,
}

impl Db {
    /// Builds the (lazy) pool and starts bringing the database up in the
    /// background. Needs a Tokio runtime.
    pub fn start(options: &PgOptions) -> Db {
        let (connect, config_error) = match PgConnectOptions::from_str(&options.url) {
            Ok(connect) => (connect, None),
            Err(error) => {
                let message = format!("the PostgreSQL URL cannot be used: {error}");
                tracing::error!("{message}");
                (PgConnectOptions::new_without_pgpass(), Some(message))
            }
        };
        let connect = connect.application_name(&format!("daytrader {}", options.server));
        // Every statement of the store reaches its rows by key, and runs
        // over and over: planning it again on each execution was most of
        // PostgreSQL's CPU per batch (docs/benchmarks.md), so each
        // connection plans a statement once. A plan made once must hold
        // whatever the size of the tables, which start empty and grow under
        // the same prepared statements: a generic plan chosen while `log`
        // held a few rows could be a sequential scan, kept on the
        // connection while the log grows (it once slowed commits tenfold),
        // and so could a hash or merge join that reads a whole index. Only
        // index scans and nested loops are left to choose from, which
        // cost what the rows reached cost whatever the size of the tables
        // (and JIT is off, which the cost of a ruled-out plan would switch
        // on).
        let planned_once = connect.clone().options([
            ("statement_timeout", STATEMENT_TIMEOUT),
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
            ("jit", "off"),
        ]);
        let pool = pool_of(
            options.pool_size,
            options.acquire_timeout,
            planned_once.clone(),
        );
        // One connection per committer (a committer holds one at a time),
        // within the pool size the operator set.
        let commit_pool = pool_of(
            (options.committers.max(1) as u32).min(options.pool_size.max(1)),
            options.acquire_timeout,
            planned_once,
        );
        let db = Db(Arc::new(Inner {
            pool,
            commit_pool,
            connect,
            acquire_timeout: options.acquire_timeout,
            why: Mutex::new(
                config_error
                    .clone()
                    .unwrap_or_else(|| "PostgreSQL has not answered yet".to_owned()),
            ),
            config_error,
            ready: AtomicBool::new(false),
            migrated: AtomicBool::new(false),
            recovering: Mutex::new(true),
        }));
        tokio::spawn(db.clone().recover());
        db
    }

    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// The committers' pool.
    pub fn commit_pool(&self) -> &PgPool {
        &self.0.commit_pool
    }

    pub fn acquire_timeout(&self) -> Duration {
        self.0.acquire_timeout
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// Fails fast while the database is known to be unusable.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.is_ready() {
            Ok(())
        } else {
            let why = self.0.why.lock().expect("not poisoned").clone();
            Err(StoreError::Unavailable(why))
        }
    }

    /// Turns a driver error into the store's, noting when it shows that the
    /// database is gone.
    pub fn failed(&self, error: sqlx::Error) -> StoreError {
        if is_connection_error(&error) {
            self.lost(error.to_string());
        }
        StoreError::from(error)
    }

    /// A connection of its own, outside the pool, bounded by the acquire
    /// timeout.
    pub async fn dedicated(&self) -> Result<PgConnection, StoreError> {
        if let Some(error) = &self.0.config_error {
            return Err(StoreError::Unavailable(error.clone()));
        }
        match tokio::time::timeout(self.0.acquire_timeout, self.0.connect.connect()).await {
            Ok(connected) => Ok(connected?),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not accept a connection within {:?}",
                self.0.acquire_timeout
            ))),
        }
    }

    fn lost(&self, why: String) {
        let mut recovering = self.0.recovering.lock().expect("not poisoned");
        let was_ready = self.0.ready.swap(false, Ordering::AcqRel);
        if was_ready {
            tracing::warn!(error = %why, "lost PostgreSQL; answering 503 until it is back");
        }
        *self.0.why.lock().expect("not poisoned") = why;
        if !*recovering {
            *recovering = true;
            tokio::spawn(self.clone().recover());
        }
    }

    /// Tries to bring the database up until it answers, backing off; stops
    /// early when nothing but this task still uses the store.
    async fn recover(self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if Arc::strong_count(&self.0) == 1 {
                return;
            }
            match self.bring_up().await {
                Ok(()) => {
                    let mut recovering = self.0.recovering.lock().expect("not poisoned");
                    *recovering = false;
                    self.0.ready.store(true, Ordering::Release);
                    tracing::info!("PostgreSQL is ready");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "PostgreSQL is not available");
                    *self.0.why.lock().expect("not poisoned") = error.to_string();
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn bring_up(&self) -> Result<(), StoreError> {
        if !self.0.migrated.load(Ordering::Acquire) {
            let mut conn = self.dedicated().await?;
            let migrated = schema::migrate(&mut conn).await;
            let _ = conn.close().await;
            migrated?;
            self.0.migrated.store(true, Ordering::Release);
        }
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }
}

/// A lazy pool: connections are made when first needed. One idle for a
/// while is pinged before use, so that connections left over from before a
/// database restart are replaced instead of failing a batch; busy
/// connections skip the round trip.
fn pool_of(size: u32, acquire_timeout: Duration, connect: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size.max(1))
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move { Ok(meta.idle_for < PING_IF_IDLE || conn.ping().await.is_ok()) })
        })
        .connect_lazy_with(connect)
}

/// Whether an error means the database (or the way to it) is gone, as
/// opposed to one statement failing.
fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        // 08: connection exceptions; 57P: the server is shutting down or
        // starting; 3D000: the database does not exist (dropped); 53300:
        // too many connections.
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "3D000" || code == "53300"
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(error.to_string())
            }
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
