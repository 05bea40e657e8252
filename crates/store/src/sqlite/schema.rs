//! The SQLite schema, as an ordered list of migrations. `PRAGMA
//! user_version` records how many have run; each runs in its own
//! transaction with the version bump, so a crash leaves either all of a
//! migration or none.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, the audit log (which also holds idempotency records),
    // the trigger index and API tokens.
    "
    CREATE TABLE accounts (
        user_id    TEXT PRIMARY KEY,
        state      BLOB NOT NULL,
        version    INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- One row per atomic step. user_id '' marks system rows and the global
    -- DUMPLOG. idem_key is the client's transaction number.
    CREATE TABLE log (
        seq      INTEGER PRIMARY KEY,
        ts_ms    INTEGER NOT NULL,
        server   TEXT NOT NULL,
        user_id  TEXT NOT NULL,
        txn      INTEGER NOT NULL,
        idem_key INTEGER,
        body     BLOB NOT NULL
    );
    CREATE UNIQUE INDEX log_idempotency ON log (user_id, idem_key) WHERE idem_key IS NOT NULL;
    CREATE INDEX log_by_user ON log (user_id, seq);

    -- Derived from accounts, kept in the same transaction: armed triggers
    -- by symbol, for the trigger engine. side 0 = buy, 1 = sell.
    CREATE TABLE armed_triggers (
        symbol        TEXT NOT NULL,
        side          INTEGER NOT NULL,
        user_id       TEXT NOT NULL,
        trigger_price INTEGER NOT NULL,
        PRIMARY KEY (symbol, side, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX armed_triggers_by_user ON armed_triggers (user_id);

    CREATE TABLE api_tokens (
        id         INTEGER PRIMARY KEY,
        user_id    TEXT NOT NULL,
        name       TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    );
    CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
    ",
    // 2: notifications, written in the same transaction as the step that
    // caused them, paged newest first by id.
    "
    CREATE TABLE notifications (
        id         INTEGER PRIMARY KEY,
        user_id    TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        message    TEXT NOT NULL,
        txn        INTEGER NOT NULL,
        read       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, id);
    CREATE INDEX notifications_unread ON notifications (user_id) WHERE read = 0;
    ",
    // 3: the passwords of traders who registered on the web pages, written
    // in the same transaction as the account the registration creates.
    "
    CREATE TABLE credentials (
        user_id       TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_ms    INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 4: one row per instance that readiness rewrites while writes fail,
    // to learn when they succeed again.
    "
    CREATE TABLE write_probe (
        instance TEXT PRIMARY KEY,
        at_ms    INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 5: expiry: when each account's next pending order runs out (NULL with
    // none pending), written with the account, so that the expiry task
    // finds the accounts with orders due through the index alone.
    "
    ALTER TABLE accounts ADD COLUMN expires_ms INTEGER;
    CREATE INDEX accounts_by_expiry ON accounts (expires_ms) WHERE expires_ms IS NOT NULL;
    ",
    // 6: the price history (prices.rs): every fetched price per symbol,
    // written with the log row of the fetch, the newest 1,000 per symbol
    // kept. seq is that log row's.
    "
    CREATE TABLE price_history (
        symbol TEXT NOT NULL,
        at_ms  INTEGER NOT NULL,
        seq    INTEGER NOT NULL,
        price  INTEGER NOT NULL,
        PRIMARY KEY (symbol, at_ms, seq)
    ) WITHOUT ROWID;
    ",
    // 7: price generations (prices.rs): every batch that adds price points
    // counts one more, so the sum of the rows moves on exactly when the
    // price history gains a point.
    "
    CREATE TABLE price_generations (
        server TEXT PRIMARY KEY,
        n      INTEGER NOT NULL
    );
    ",
];

/// Brings the database up to the current schema.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the database schema is version {current}, newer than this build's {}; use a newer DayTrader",
                MIGRATIONS.len()
            )),
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "migrated the SQLite schema");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer than this build"), "{err}");
    }
}
