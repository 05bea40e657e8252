//! The cluster back end: many stateless instances over one PostgreSQL
//! database.
//!
//! The structure is SQLite's (group commit through [`crate::batch::apply`],
//! one log row per command), with what sharing a database adds: row locks
//! that serialize a user's commands across instances (`committer`), a
//! store that starts (and keeps running) while the database is away and
//! answers 503 meanwhile (`db`), migrations that tolerate several
//! instances starting at once (`schema`), and leader election for the
//! trigger engine ([`Lease`]).

mod committer;
mod db;
mod known;
mod lease;
mod reader;
mod schema;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::UserId;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::committer::{Committer, Queue, Reply};
use self::db::Db;
use self::lease::LEADER_LOCK_CLASS;
pub use self::lease::Lease;
pub use self::reader::PgReader;
use crate::backend::Writes;
use crate::batch::{Done, Job};
use crate::tokens::NewApiToken;
use crate::write_health::WriteHealth;
use crate::{Clock, StoreError};

/// Jobs waiting for a committer before callers wait for room.
const QUEUE: usize = 16_384;

pub struct PgOptions {
    /// A `postgres://` URL (see [`postgres_url`]).
    pub url: String,
    /// This instance's id, recorded as `server` on every row it writes.
    pub server: String,
    pub clock: Clock,
    /// The most jobs in one transaction.
    pub max_batch: usize,
    /// Connections in the pool for reads. The committers have their own,
    /// one each (at most this many).
    pub pool_size: u32,
    /// The longest anything waits for a pooled connection before answering
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// Batches in flight at once. More than one lets a batch fill while
    /// another waits for its commit's fsync.
    pub committers: usize,
}

impl PgOptions {
    /// The defaults: batches of up to 1,024 jobs, 16 connections, 2 s to
    /// get one, 2 committers.
    pub fn new(url: String, server: String, clock: Clock) -> PgOptions {
        PgOptions {
            url,
            server,
            clock,
            max_batch: 1024,
            pool_size: 16,
            acquire_timeout: Duration::from_secs(2),
            committers: 2,
        }
    }
}

/// Characters left as they are in a URL's user, password and database
/// name: RFC 3986's unreserved set. Everything else is percent-encoded, so
/// that a password with `@`, `:` or `/` cannot change the URL's meaning.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A `postgres://` URL from its parts. A `host` starting with `/` is a Unix
/// socket directory; an IPv6 address gets its brackets.
pub fn postgres_url(
    host: &str,
    port: u16,
    database: &str,
    user: &str,
    password: Option<&str>,
) -> String {
    let mut authority = utf8_percent_encode(user, COMPONENT).to_string();
    if let Some(password) = password {
        authority.push(':');
        authority.extend(utf8_percent_encode(password, COMPONENT));
    }
    let database = utf8_percent_encode(database, COMPONENT);
    if host.starts_with('/') {
        let socket = utf8_percent_encode(host, COMPONENT);
        format!("postgres://{authority}@localhost:{port}/{database}?host={socket}")
    } else if host.contains(':') && !host.starts_with('[') {
        format!("postgres://{authority}@[{host}]:{port}/{database}")
    } else {
        format!("postgres://{authority}@{host}:{port}/{database}")
    }
}

/// A 31-bit key for an advisory lock on `name` (FNV-1a): stable across
/// processes and builds, which a lock shared by instances needs, and
/// non-negative, so it reads back unchanged from `pg_locks`.
pub(crate) fn lock_key(name: &str) -> i32 {
    let hash = name.bytes().fold(2_166_136_261u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    });
    (hash & 0x7fff_ffff) as i32
}

/// The PostgreSQL store: reads, the committers, and leadership.
pub struct PgStore {
    db: Db,
    reader: PgReader,
    /// Recorded as the probe row's instance.
    server: String,
    health: WriteHealth,
    /// `None` once closed.
    queue: Mutex<Option<mpsc::Sender<(Job, Reply)>>>,
    committers: Mutex<Vec<JoinHandle<()>>>,
    known: committer::Known,
}

impl PgStore {
    /// Returns at once. The database is reached (and migrated) in the
    /// background, with backoff, for as long as it takes; until then, and
    /// whenever it is unreachable later, writes and reads fail fast with
    /// [`StoreError::Unavailable`]. Needs a Tokio runtime.
    pub fn connect(options: PgOptions) -> PgStore {
        let db = Db::start(&options);
        let (sender, receiver) = mpsc::channel(QUEUE);
        let queue: Queue = Arc::new(tokio::sync::Mutex::new(receiver));
        let health = WriteHealth::default();
        let known = committer::Known::default();
        let committers = (0..options.committers.max(1))
            .map(|_| {
                let committer = Committer {
                    db: db.clone(),
                    server: options.server.clone(),
                    clock: options.clock.clone(),
                    max_batch: options.max_batch.max(1),
                    health: health.clone(),
                    known: known.clone(),
                };
                tokio::spawn(committer.run(queue.clone()))
            })
            .collect();
        PgStore {
            reader: PgReader { db: db.clone() },
            db,
            server: options.server,
            health,
            queue: Mutex::new(Some(sender)),
            committers: Mutex::new(committers),
            known,
        }
    }

    /// Whether the database answers and the schema is migrated.
    pub fn is_ready(&self) -> bool {
        self.db.is_ready()
    }

    pub fn reader(&self) -> &PgReader {
        &self.reader
    }

    /// How many batches took the fenced write (one statement, from the
    /// accounts this instance kept) since the store started.
    pub fn fenced_batches(&self) -> u64 {
        self.known.lock().expect("not poisoned").written()
    }

    /// Tries to take the lead of the role `name` (e.g. the trigger engine)
    /// among every instance on this database: `None` when another holds
    /// it. The lease keeps a connection of its own, outside the pool.
    pub async fn try_lead(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let mut conn = self.db.dedicated().await?;
        let key = lock_key(name);
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LEADER_LOCK_CLASS)
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            Ok(Some(Lease::new(conn, key, self.db.acquire_timeout())))
        } else {
            let _ = sqlx::Connection::close(conn).await;
            Ok(None)
        }
    }
}

impl Writes for PgStore {
    async fn submit(&self, job: Job) -> Result<Done, StoreError> {
        self.db.check()?;
        let queue = self
            .queue
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        queue
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn mark_notifications_read(
        &self,
        user: &UserId,
        ids: Option<Vec<i64>>,
    ) -> Result<u64, StoreError> {
        if self.queue.lock().expect("not poisoned").is_none() {
            return Err(StoreError::Closed);
        }
        self.db.check()?;
        // One statement of its own, outside the group commit: it changes
        // no balance, so it needs no batch. What a trader sees changed, so
        // it bumps the account's version too: a new version makes their
        // cached pages stale, as a command does.
        let marked: i64 = sqlx::query_scalar(
            "WITH marked AS (
                 UPDATE notifications SET read = true
                 WHERE user_id = $1 AND NOT read AND ($2::int8[] IS NULL OR id = ANY($2))
                 RETURNING 1
             ), bumped AS (
                 UPDATE accounts SET version = version + 1
                 WHERE user_id = $1 AND EXISTS (SELECT 1 FROM marked)
             )
             SELECT count(*) FROM marked",
        )
        .bind(user.as_str())
        .bind(ids)
        .fetch_one(self.db.pool())
        .await
        .map_err(|e| self.db.failed(e))?;
        Ok(marked as u64)
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<i64, StoreError> {
        self.db.check()?;
        sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_ms)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(token.user.as_str())
        .bind(&token.name)
        .bind(token.hash.as_slice())
        .bind(token.created_ms)
        .fetch_one(self.db.pool())
        .await
        .map_err(|e| self.db.failed(e))
    }

    async fn revoke_api_token(
        &self,
        user: &UserId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.db.check()?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_ms = $3
             WHERE id = $1 AND user_id = $2 AND revoked_ms IS NULL",
        )
        .bind(id)
        .bind(user.as_str())
        .bind(now_ms)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.failed(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_password(
        &self,
        user: &UserId,
        hash: String,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.db.check()?;
        sqlx::query(crate::tokens::SET_PASSWORD)
            .bind(user.as_str())
            .bind(hash)
            .bind(now_ms)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.db.failed(e))?;
        Ok(())
    }

    fn writes_failing(&self) -> Option<String> {
        self.health.failing()
    }

    async fn probe_writes(&self) -> Result<(), StoreError> {
        self.db.check()?;
        let written = sqlx::query(
            "INSERT INTO write_probe (instance, at_ms) VALUES ($1, $2)
             ON CONFLICT (instance) DO UPDATE SET at_ms = excluded.at_ms",
        )
        .bind(&self.server)
        .bind(crate::system_clock()())
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.failed(e));
        match written {
            Ok(_) => {
                self.health.succeeded();
                Ok(())
            }
            Err(error) => {
                self.health.failed(&error);
                Err(error)
            }
        }
    }

    async fn close(&self) {
        // Dropping the sender lets the committers drain the queue and stop.
        drop(self.queue.lock().expect("not poisoned").take());
        let committers = std::mem::take(&mut *self.committers.lock().expect("not poisoned"));
        for committer in committers {
            let _ = committer.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_what_would_change_their_meaning() {
        assert_eq!(
            postgres_url("db", 5432, "daytrader", "app", None),
            "postgres://app@db:5432/daytrader"
        );
        assert_eq!(
            postgres_url("db.internal", 6543, "day trader", "a@b", Some("p:w/d@#?%é")),
            "postgres://a%40b:p%3Aw%2Fd%40%23%3F%25%C3%A9@db.internal:6543/day%20trader"
        );
        assert_eq!(
            postgres_url("::1", 5432, "d", "u", Some("")),
            "postgres://u:@[::1]:5432/d"
        );
        assert_eq!(
            postgres_url("/var/run/postgresql", 5432, "d", "u", None),
            "postgres://u@localhost:5432/d?host=%2Fvar%2Frun%2Fpostgresql"
        );
    }

    #[test]
    fn urls_round_trip_through_the_driver() {
        use sqlx::postgres::PgConnectOptions;
        use std::str::FromStr;
        let url = postgres_url("db", 5433, "day/trader", "us:er", Some("p@ss word/?#"));
        let options = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(options.get_host(), "db");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_username(), "us:er");
        assert_eq!(options.get_database(), Some("day/trader"));
        let socket =
            PgConnectOptions::from_str(&postgres_url("/tmp/pg", 5432, "d", "u", None)).unwrap();
        assert_eq!(
            socket.get_socket().map(|p| p.to_str().unwrap()),
            Some("/tmp/pg")
        );
    }

    #[test]
    fn lock_keys_are_stable_and_non_negative() {
        // FNV-1a 32 of "" is the offset basis; masked to 31 bits.
        assert_eq!(lock_key(""), (2_166_136_261u32 & 0x7fff_ffff) as i32);
        assert_eq!(lock_key("trigger-engine"), lock_key("trigger-engine"));
        assert_ne!(lock_key("a"), lock_key("b"));
        assert!(
            ["", "a", "zzz", "trigger-engine"]
                .iter()
                .all(|n| lock_key(n) >= 0)
        );
    }
}
