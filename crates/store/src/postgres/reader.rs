//! Reads from PostgreSQL, through the shared pool: each query waits at most
//! the acquire timeout for a connection, and fails fast while the database
//! is known to be down.

use std::collections::HashMap;

use bytes::Bytes;
use engine::{Money, Symbol, TriggerSide, UserId};
use futures::Stream;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::db::Db;
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

/// Read access to a DayTrader PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct PgReader {
    pub(crate) db: Db,
}

impl PgReader {
    /// Runs `query` on the pool, failing fast while the database is down.
    async fn fetch_all(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<PgRow>, StoreError> {
        self.db.check()?;
        query
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.db.failed(e))
    }

    async fn log_rows(&self, query: LogQuery) -> Result<Vec<LogRow>, StoreError> {
        let statement = match query.user {
            Some(_) => sqlx::query(
                "SELECT seq, ts_ms, server, user_id, txn, body FROM log
                 WHERE user_id = $3 AND seq > $1 AND seq <= $2 ORDER BY user_id, seq LIMIT $4",
            ),
            None => sqlx::query(
                "SELECT seq, ts_ms, server, user_id, txn, body FROM log
                 WHERE seq > $1 AND seq <= $2 AND $3::text IS NOT NULL ORDER BY seq LIMIT $4",
            ),
        };
        let rows = self
            .fetch_all(
                statement
                    .bind(query.after_seq)
                    .bind(query.upto_seq)
                    .bind(user_column(query.user.as_ref()))
                    .bind(limit_param(query.limit)),
            )
            .await?;
        rows.iter().map(log_row).collect()
    }
}

impl Reads for PgReader {
    async fn ping(&self) -> Result<(), StoreError> {
        self.fetch_all(sqlx::query("SELECT 1")).await.map(drop)
    }

    async fn account(&self, user: &UserId) -> Result<Option<LoadedAccount>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT state, version FROM accounts WHERE user_id = $1")
                    .bind(user.as_str()),
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(LoadedAccount {
                    account: decode_account(user, row.try_get("state")?)?,
                    version: row.try_get("version")?,
                })
            })
            .transpose()
    }

    async fn account_version(&self, user: &UserId) -> Result<Option<i64>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT version FROM accounts WHERE user_id = $1").bind(user.as_str()),
            )
            .await?;
        Ok(rows.first().map(|row| row.try_get(0)).transpose()?)
    }

    async fn user_log(
        &self,
        user: &UserId,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogRow>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT seq, ts_ms, server, user_id, txn, body FROM log
                     WHERE user_id = $1 AND seq < $2 ORDER BY user_id DESC, seq DESC LIMIT $3",
                )
                .bind(user.as_str())
                .bind(before_seq.unwrap_or(i64::MAX))
                .bind(limit_param(limit)),
            )
            .await?;
        rows.iter().map(log_row).collect()
    }

    async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query("SELECT password_hash FROM credentials WHERE user_id = $1")
                    .bind(user.as_str()),
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| row.try_get("password_hash"))
            .transpose()?)
    }

    async fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiToken>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT id, name, created_ms, revoked_ms FROM api_tokens
                     WHERE user_id = $1 ORDER BY id DESC",
                )
                .bind(user.as_str()),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiToken {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_ms: row.try_get("created_ms")?,
                    revoked_ms: row.try_get("revoked_ms")?,
                })
            })
            .collect()
    }

    async fn api_token_user(&self, hash: TokenHash) -> Result<Option<UserId>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT user_id FROM api_tokens WHERE token_hash = $1 AND revoked_ms IS NULL",
                )
                .bind(hash.as_slice()),
            )
            .await?;
        rows.first()
            .map(|row| parse_user(row.try_get("user_id")?))
            .transpose()
    }

    async fn users_with_firing_triggers(
        &self,
        symbol: Symbol,
        price: Money,
    ) -> Result<Vec<UserId>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT DISTINCT user_id FROM armed_triggers WHERE symbol = $1
                     AND ((side = $2 AND trigger_price >= $4) OR (side = $3 AND trigger_price <= $4))",
                )
                .bind(symbol.as_str())
                .bind(side_code(TriggerSide::Buy))
                .bind(side_code(TriggerSide::Sell))
                .bind(price.cents()),
            )
            .await?;
        rows.iter()
            .map(|row| parse_user(row.try_get("user_id")?))
            .collect()
    }

    async fn users_with_orders_due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT user_id FROM accounts WHERE expires_ms IS NOT NULL AND expires_ms <= $1
                     ORDER BY expires_ms LIMIT $2",
                )
                .bind(now_ms)
                .bind(limit as i64),
            )
            .await?;
        rows.iter()
            .map(|row| parse_user(row.try_get("user_id")?))
            .collect()
    }

    async fn armed_symbols(&self) -> Result<Vec<Symbol>, StoreError> {
        let rows = self
            .fetch_all(sqlx::query(
                "SELECT DISTINCT symbol FROM armed_triggers ORDER BY symbol",
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let symbol: &str = row.try_get("symbol")?;
                Symbol::parse(symbol)
                    .map_err(|_| StoreError::Corrupt(format!("armed trigger symbol {symbol:?}")))
            })
            .collect()
    }

    /// The audit log as XML from one query whose rows stream in as
    /// PostgreSQL sends them. A query per page of 1,000 rows (each through
    /// the pool, each planned anew) left the dump at about 20 MB/s; one
    /// query streams at the speed of rendering. 64 KiB chunks go through a
    /// small channel, so memory stays flat whatever the log's size, and a
    /// client that stops reading stops the query (its socket fills up).
    ///
    /// The query runs on a connection of its own, without the pool's
    /// statement timeout: a dump of a large log, or to a slow client, may
    /// take longer than any one statement should. The whole dump (the
    /// connection's reads included) runs on one blocking thread, so that
    /// each row is allocated and freed by the same thread (dump.rs).
    fn stream_log(
        &self,
        user: Option<UserId>,
        upto_seq: i64,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
        let db = self.db.clone();
        let runtime = tokio::runtime::Handle::current();
        let (tx, stream) = dump::channel();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                if let Err(error) = stream_rows(&db, user, upto_seq, &tx).await {
                    let _ = tx.send(Err(error)).await;
                }
            });
        });
        stream
    }

    async fn log_page(&self, after_seq: i64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        self.log_rows(LogQuery::whole_log(after_seq, limit)).await
    }

    async fn accounts_page(
        &self,
        after_user: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, LoadedAccount)>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT user_id, state, version FROM accounts WHERE user_id > $1
                     ORDER BY user_id LIMIT $2",
                )
                .bind(after_user.map_or("", UserId::as_str))
                .bind(limit_param(limit)),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let user = parse_user(row.try_get("user_id")?)?;
                let account = decode_account(&user, row.try_get("state")?)?;
                let version = row.try_get("version")?;
                Ok((user, LoadedAccount { account, version }))
            })
            .collect()
    }

    async fn notifications(
        &self,
        user: &UserId,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT id, user_id, created_ms, kind, message, txn, read FROM notifications
                     WHERE user_id = $1 AND id < $2 ORDER BY user_id DESC, id DESC LIMIT $3",
                )
                .bind(user.as_str())
                .bind(before_id.unwrap_or(i64::MAX))
                .bind(limit_param(limit)),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let columns = NotificationColumns {
                    id: row.try_get("id")?,
                    user: row.try_get("user_id")?,
                    created_ms: row.try_get("created_ms")?,
                    kind: row.try_get("kind")?,
                    message: row.try_get("message")?,
                    txn: row.try_get("txn")?,
                    read: row.try_get("read")?,
                };
                columns.decode()
            })
            .collect()
    }

    async fn price_history(
        &self,
        symbol: Symbol,
        since_ms: Option<i64>,
    ) -> Result<Vec<PricePoint>, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT at_ms, price FROM price_history WHERE symbol = $1 AND at_ms > $2
                     ORDER BY at_ms, seq",
                )
                .bind(symbol.as_str())
                .bind(since_ms.unwrap_or(i64::MIN)),
            )
            .await?;
        rows.iter().map(price_point).collect()
    }

    async fn latest_prices(
        &self,
        symbols: Vec<Symbol>,
    ) -> Result<HashMap<Symbol, PricePoint>, StoreError> {
        let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT s.symbol, l.at_ms, l.price FROM unnest($1::text[]) AS s(symbol)
                     CROSS JOIN LATERAL (
                         SELECT at_ms, price FROM price_history h WHERE h.symbol = s.symbol
                         ORDER BY at_ms DESC, seq DESC LIMIT 1) AS l",
                )
                .bind(&names),
            )
            .await?;
        let mut latest = HashMap::new();
        for row in &rows {
            latest.insert(price_symbol(row.try_get("symbol")?)?, price_point(row)?);
        }
        Ok(latest)
    }

    async fn summary_extras(
        &self,
        user: &UserId,
        symbols: Vec<Symbol>,
        limit: usize,
    ) -> Result<SummaryExtras, StoreError> {
        let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        // One statement for both reads: the user's log rows, then one row
        // per symbol with a price, told apart by `symbol` (NULL on a log
        // row; a price's time is in `ts_ms`).
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT seq, ts_ms, server, user_id, txn, body,
                            NULL::text AS symbol, NULL::bigint AS price
                     FROM (SELECT seq, ts_ms, server, user_id, txn, body FROM log
                           WHERE user_id = $1 ORDER BY user_id DESC, seq DESC LIMIT $3) AS h
                     UNION ALL
                     SELECT NULL, l.at_ms, NULL, NULL, NULL, NULL, s.symbol, l.price
                     FROM unnest($2::text[]) AS s(symbol)
                     CROSS JOIN LATERAL (
                         SELECT at_ms, price FROM price_history p WHERE p.symbol = s.symbol
                         ORDER BY at_ms DESC, seq DESC LIMIT 1) AS l",
                )
                .bind(user.as_str())
                .bind(&names)
                .bind(limit_param(limit)),
            )
            .await?;
        let mut log = Vec::with_capacity(limit);
        let mut prices = HashMap::new();
        for row in &rows {
            match row.try_get::<Option<&str>, _>(6)? {
                None => log.push(log_row(row)?),
                Some(name) => {
                    let point = PricePoint {
                        at_ms: row.try_get(1)?,
                        price: Money::from_cents(row.try_get(7)?),
                    };
                    prices.insert(price_symbol(name)?, point);
                }
            }
        }
        // Newest first, whatever order the union's halves came in.
        log.sort_unstable_by_key(|row| std::cmp::Reverse(row.seq));
        Ok(SummaryExtras {
            prices,
            history: HistoryPage::of(log, limit).items,
        })
    }

    async fn summary_stamp(
        &self,
        user: &UserId,
        symbols: Vec<Symbol>,
        known_generation: Option<i64>,
    ) -> Result<Option<SummaryStamp>, StoreError> {
        let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        // One row. The prices are read only when the generation moved (a
        // one-time filter: PostgreSQL checks it before looking at any
        // symbol), and come back as two arrays in the order of `symbols`
        // (NULL where a symbol has no point), not as a row each: this runs
        // on every read of a kept summary.
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT a.version, g.n, g.n IS DISTINCT FROM $3 AS read, p.at_ms, p.price
                     FROM accounts a
                     CROSS JOIN (SELECT COALESCE(sum(n), 0)::bigint AS n FROM price_generations) g
                     CROSS JOIN LATERAL (
                         SELECT array_agg(l.at_ms ORDER BY s.n) AS at_ms,
                                array_agg(l.price ORDER BY s.n) AS price
                         FROM unnest($2::text[]) WITH ORDINALITY AS s(symbol, n)
                         LEFT JOIN LATERAL (
                             SELECT at_ms, price FROM price_history h WHERE h.symbol = s.symbol
                             ORDER BY at_ms DESC, seq DESC LIMIT 1) AS l ON true
                         WHERE g.n IS DISTINCT FROM $3) AS p
                     WHERE a.user_id = $1",
                )
                .bind(user.as_str())
                .bind(&names)
                .bind(known_generation),
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let prices = match row.try_get::<bool, _>(2)? {
            false => None,
            true => {
                let at: Vec<Option<i64>> = row.try_get::<Option<_>, _>(3)?.unwrap_or_default();
                let cents: Vec<Option<i64>> = row.try_get::<Option<_>, _>(4)?.unwrap_or_default();
                Some(newest_points(symbols, at, cents))
            }
        };
        Ok(Some(SummaryStamp {
            version: row.try_get(0)?,
            generation: row.try_get(1)?,
            prices,
        }))
    }

    async fn unread_notifications(&self, user: &UserId) -> Result<u64, StoreError> {
        let rows = self
            .fetch_all(
                sqlx::query(
                    "SELECT count(*) AS unread FROM notifications WHERE user_id = $1 AND NOT read",
                )
                .bind(user.as_str()),
            )
            .await?;
        let count: i64 = rows.first().map_or(Ok(0), |row| row.try_get("unread"))?;
        Ok(count as u64)
    }
}

/// Renders the log's rows up to `upto_seq` (of `user`, or everyone's) into
/// `tx`, from one query.
async fn stream_rows(
    db: &Db,
    user: Option<UserId>,
    upto_seq: i64,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, StoreError>>,
) -> Result<(), StoreError> {
    use futures::TryStreamExt;
    db.check()?;
    let mut conn = db.dedicated().await?;
    // In key order from the index, the first rows at once: a plan that
    // reads the whole table and sorts it would start late, and spill.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .map_err(|e| db.failed(e))?;
    let query = match &user {
        Some(user) => sqlx::query(
            "SELECT seq, ts_ms, server, user_id, txn, body FROM log
             WHERE user_id = $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(user.as_str()),
        None => sqlx::query(
            "SELECT seq, ts_ms, server, user_id, txn, body FROM log
             WHERE seq <= $2 AND $1::text IS NULL ORDER BY seq",
        )
        .bind(None::<&str>),
    };
    let mut chunks = dump::Chunks::new();
    {
        let mut rows = query.bind(upto_seq).fetch(&mut conn);
        while let Some(row) = rows.try_next().await.map_err(|e| db.failed(e))? {
            if let Some(chunk) = chunks.push(&log_row(&row)?)
                && tx.send(Ok(chunk)).await.is_err()
            {
                return Ok(()); // the client went away
            }
        }
    }
    let _ = tx.send(Ok(chunks.finish())).await;
    let _ = sqlx::Connection::close(conn).await;
    Ok(())
}

/// Reads a price history row's `at_ms` and `price`.
/// The points of `symbols` from two arrays in their order, NULL where a
/// symbol has none.
fn newest_points(
    symbols: Vec<Symbol>,
    at: Vec<Option<i64>>,
    cents: Vec<Option<i64>>,
) -> HashMap<Symbol, PricePoint> {
    symbols
        .into_iter()
        .zip(at.into_iter().zip(cents))
        .filter_map(|(symbol, point)| match point {
            (Some(at_ms), Some(cents)) => Some((
                symbol,
                PricePoint {
                    at_ms,
                    price: Money::from_cents(cents),
                },
            )),
            _ => None,
        })
        .collect()
}

/// A symbol of the price history, as stored.
fn price_symbol(name: &str) -> Result<Symbol, StoreError> {
    Symbol::parse(name).map_err(|_| StoreError::Corrupt(format!("price history symbol {name:?}")))
}

fn price_point(row: &PgRow) -> Result<PricePoint, StoreError> {
    Ok(PricePoint {
        at_ms: row.try_get("at_ms")?,
        price: Money::from_cents(row.try_get("price")?),
    })
}

/// Reads a `seq, ts_ms, server, user_id, txn, body` row (by position: by
/// name costs a lookup per column of every row, which shows in a dump).
fn log_row(row: &PgRow) -> Result<LogRow, StoreError> {
    let columns = LogColumns {
        seq: row.try_get(0)?,
        ts_ms: row.try_get(1)?,
        server: row.try_get(2)?,
        user: row.try_get(3)?,
        txn: row.try_get(4)?,
        body: row.try_get(5)?,
    };
    columns.decode()
}
