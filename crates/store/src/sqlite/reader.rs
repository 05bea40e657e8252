//! Reads from the SQLite file, on a small pool of read-only connections
//! (WAL lets them read while the committer writes), each query on a
//! blocking thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use engine::{Money, Symbol, UserId};
use futures::Stream;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::DB_FILE;
use super::latest_prices::LatestPrices;
use crate::StoreError;
use crate::backend::Reads;
use crate::batch::LoadedAccount;
use crate::codec::{
    LogColumns, NotificationColumns, decode_account, limit_param, parse_user, side_code,
    user_column,
};
use crate::dump::{self, LogQuery};
use crate::notification::Notification;
use crate::prices::{PricePoint, SummaryExtras, SummaryStamp};
use crate::record::{HistoryPage, LogRow};
use crate::tokens::{ApiToken, TokenHash};

/// Read access to a DayTrader SQLite database, usable while a server runs.
#[derive(Clone)]
pub struct SqliteReader {
    path: Arc<PathBuf>,
    pool: Arc<Mutex<Vec<Connection>>>,
    /// The store's reader shares its writer's newest prices; a tool's
    /// reader beside a running server has none and reads the file.
    latest_prices: Option<LatestPrices>,
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
        Ok(SqliteReader::new(path, None))
    }

    pub(super) fn new(path: PathBuf, latest_prices: Option<LatestPrices>) -> SqliteReader {
        SqliteReader {
            path: Arc::new(path),
            pool: Arc::new(Mutex::new(Vec::new())),
            latest_prices,
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

    async fn log_rows(&self, query: LogQuery) -> Result<Vec<LogRow>, StoreError> {
        self.read(move |conn| read_log_rows(conn, &query)).await
    }
}

impl Reads for SqliteReader {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn account(&self, user: &UserId) -> Result<Option<LoadedAccount>, StoreError> {
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

    async fn account_version(&self, user: &UserId) -> Result<Option<i64>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT version FROM accounts WHERE user_id = ?1")?
                .query_row([user.as_str()], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn user_log(
        &self,
        user: &UserId,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        let user = user.clone();
        self.read(move |conn| read_user_log(conn, &user, before_seq, limit))
            .await
    }

    async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        let user = user.clone();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT password_hash FROM credentials WHERE user_id = ?1")?
                .query_row([user.as_str()], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiToken>, StoreError> {
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

    async fn api_token_user(&self, hash: TokenHash) -> Result<Option<UserId>, StoreError> {
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

    async fn users_with_firing_triggers(
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

    async fn users_with_orders_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id FROM accounts WHERE expires_ms IS NOT NULL AND expires_ms <= ?1
                 ORDER BY expires_ms LIMIT ?2",
            )?;
            let users = stmt.query_map(params![now_ms, limit as i64], |r| r.get::<_, String>(0))?;
            users
                .map(|u| parse_user(&u?))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    }

    async fn armed_symbols(&self) -> Result<Vec<Symbol>, StoreError> {
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

    fn stream_log(
        &self,
        user: Option<UserId>,
        upto_seq: i64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
        let this = self.clone();
        // Each page on a pooled connection, on the dump's own thread.
        dump::stream(
            move |query| this.with_conn(|conn| read_log_rows(conn, &query)),
            user,
            upto_seq,
        )
    }

    async fn log_page(&self, after_seq: i64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        self.log_rows(LogQuery::whole_log(after_seq, limit)).await
    }

    async fn accounts_page(
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

    async fn notifications(
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

    async fn price_history(
        &self,
        symbol: Symbol,
        since_ms: Option<i64>,
    ) -> Result<Vec<PricePoint>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at_ms, price FROM price_history WHERE symbol = ?1 AND at_ms > ?2
                 ORDER BY at_ms, seq",
            )?;
            let rows = stmt.query_map(
                params![symbol.as_str(), since_ms.unwrap_or(i64::MIN)],
                |row| {
                    Ok(PricePoint {
                        at_ms: row.get(0)?,
                        price: Money::from_cents(row.get(1)?),
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn latest_prices(
        &self,
        symbols: Vec<Symbol>,
    ) -> Result<HashMap<Symbol, PricePoint>, StoreError> {
        let latest = self.latest_prices.clone();
        self.read(move |conn| {
            // One read transaction for all the symbols: each statement
            // outside one would be a transaction of its own, and each
            // starts with the connection's page cache emptied by the
            // commits since the last (a summary holds dozens of symbols).
            let tx = conn.unchecked_transaction()?;
            newest_prices(&tx, symbols, latest.as_ref())
        })
        .await
    }

    async fn summary_stamp(
        &self,
        user: &UserId,
        symbols: Vec<Symbol>,
        known_generation: Option<i64>,
    ) -> Result<Option<SummaryStamp>, StoreError> {
        let user = user.clone();
        let latest = self.latest_prices.clone();
        self.read(move |conn| {
            // The version, the generation and the prices from one snapshot.
            let tx = conn.unchecked_transaction()?;
            let version = tx
                .prepare_cached("SELECT version FROM accounts WHERE user_id = ?1")?
                .query_row([user.as_str()], |row| row.get(0))
                .optional()?;
            let Some(version) = version else {
                return Ok(None);
            };
            let generation = price_generation(&tx)?;
            let prices = match known_generation == Some(generation) {
                true => None,
                false => Some(newest_prices(&tx, symbols, latest.as_ref())?),
            };
            Ok(Some(SummaryStamp {
                version,
                generation,
                prices,
            }))
        })
        .await
    }

    async fn summary_extras(
        &self,
        user: &UserId,
        symbols: Vec<Symbol>,
        limit: usize,
    ) -> Result<SummaryExtras, StoreError> {
        let user = user.clone();
        let latest = self.latest_prices.clone();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let rows = read_user_log(&tx, &user, None, limit)?;
            Ok(SummaryExtras {
                prices: newest_prices(&tx, symbols, latest.as_ref())?,
                history: HistoryPage::of(rows, limit).items,
            })
        })
        .await
    }

    async fn unread_notifications(&self, user: &UserId) -> Result<u64, StoreError> {
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

/// The rows of the log `query` asks for, in `seq` order.
/// Up to `limit` of the user's log rows before row `before_seq` (from the
/// newest when `None`), newest first.
fn read_user_log(
    conn: &Connection,
    user: &UserId,
    before_seq: Option<i64>,
    limit: usize,
) -> Result<Vec<LogRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, ts_ms, server, user_id, txn, body FROM log
         WHERE user_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![
            user.as_str(),
            before_seq.unwrap_or(i64::MAX),
            limit_param(limit)
        ],
        read_row,
    )?;
    let mut page = Vec::with_capacity(limit);
    for row in rows {
        page.push(row??);
    }
    Ok(page)
}

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

/// Reads a `seq, ts_ms, server, user_id, txn, body` row.
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

/// The price generation (`prices.rs`) in the caller's snapshot.
pub(super) fn price_generation(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(sum(n), 0) FROM price_generations")?
        .query_row([], |row| row.get(0))?)
}

/// The newest point of each of `symbols` that has one, inside the caller's
/// read transaction: from memory where `latest` knows it (the store's own
/// reader), from the file for the rest, noting what was read there.
fn newest_prices(
    conn: &Connection,
    symbols: Vec<Symbol>,
    latest: Option<&LatestPrices>,
) -> Result<HashMap<Symbol, PricePoint>, StoreError> {
    let mut found = HashMap::new();
    let unknown = match latest {
        Some(latest) => latest.lookup(symbols, price_generation(conn)?, &mut found),
        None => symbols,
    };
    if unknown.is_empty() {
        return Ok(found);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, price, seq FROM price_history WHERE symbol = ?1
         ORDER BY at_ms DESC, seq DESC LIMIT 1",
    )?;
    for symbol in unknown {
        let newest = stmt
            .query_row([symbol.as_str()], |row| {
                let point = PricePoint {
                    at_ms: row.get(0)?,
                    price: Money::from_cents(row.get(1)?),
                };
                Ok((point, row.get::<_, i64>(2)?))
            })
            .optional()?;
        if let Some(latest) = latest {
            latest.read(symbol, newest);
        }
        found.extend(newest.map(|(point, _)| (symbol, point)));
    }
    Ok(found)
}
