//! The PostgreSQL schema: the same tables as SQLite's, as an ordered list
//! of migrations recorded in `schema_migrations`.
//!
//! Several instances may start at once against one database, so the whole
//! check-and-apply runs under a session advisory lock on a fixed key: the
//! first instance migrates, the others wait and then find nothing to do.
//! Each migration commits together with its `schema_migrations` row.

use sqlx::{Connection, PgConnection};

use crate::StoreError;

/// The advisory lock (single 64-bit key space) held while migrating.
const MIGRATION_LOCK: i64 = 0x4454_5f4d_4947_5241; // "DT_MIGRA"

const MIGRATIONS: &[&str] = &[
    // 1: accounts, the audit log (which also holds idempotency records),
    // the trigger index, API tokens and notifications. User ids compare
    // byte by byte (COLLATE "C"), as in SQLite and as `UserId` sorts,
    // whatever the database's locale: row locks are taken in that order and
    // audits page accounts by it.
    r#"
    CREATE TABLE accounts (
        user_id    TEXT COLLATE "C" PRIMARY KEY,
        state      BYTEA NOT NULL,
        version    BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    ) WITH (fillfactor = 80); -- room for HOT updates: every command rewrites its account

    -- One row per atomic step. user_id '' marks system rows and the global
    -- DUMPLOG. idem_key is the client's transaction number. seq comes from
    -- log_seq, allocated a batch at a time (gaps are harmless).
    CREATE SEQUENCE log_seq;
    CREATE TABLE log (
        seq      BIGINT PRIMARY KEY,
        ts_ms    BIGINT NOT NULL,
        server   TEXT NOT NULL,
        user_id  TEXT COLLATE "C" NOT NULL,
        txn      BIGINT NOT NULL,
        idem_key BIGINT,
        body     BYTEA NOT NULL
    );
    ALTER SEQUENCE log_seq OWNED BY log.seq;
    CREATE UNIQUE INDEX log_idempotency ON log (user_id, idem_key) WHERE idem_key IS NOT NULL;
    CREATE INDEX log_by_user ON log (user_id, seq);

    -- Derived from accounts, kept in the same transaction: armed triggers
    -- by symbol, for the trigger engine. side 0 = buy, 1 = sell.
    CREATE TABLE armed_triggers (
        symbol        TEXT NOT NULL,
        side          SMALLINT NOT NULL,
        user_id       TEXT COLLATE "C" NOT NULL,
        trigger_price BIGINT NOT NULL,
        PRIMARY KEY (symbol, side, user_id)
    );
    CREATE INDEX armed_triggers_by_user ON armed_triggers (user_id);

    CREATE TABLE api_tokens (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id    TEXT COLLATE "C" NOT NULL,
        name       TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT
    );
    CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

    CREATE TABLE notifications (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id    TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        kind       TEXT NOT NULL,
        message    TEXT NOT NULL,
        txn        BIGINT NOT NULL,
        read       BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, id);
    CREATE INDEX notifications_unread ON notifications (user_id) WHERE NOT read;
    "#,
    // 2: the passwords of traders who registered on the web pages, written
    // in the same transaction as the account the registration creates.
    r#"
    CREATE TABLE credentials (
        user_id       TEXT COLLATE "C" PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_ms    BIGINT NOT NULL
    );
    "#,
    // 3: one row per instance that readiness rewrites while writes fail,
    // to learn when they succeed again.
    r#"
    CREATE TABLE write_probe (
        instance TEXT PRIMARY KEY,
        at_ms    BIGINT NOT NULL
    );
    "#,
    // 4: expiry: when each account's next pending order runs out (NULL with
    // none pending), written with the account, so that the expiry task
    // finds the accounts with orders due through the index alone.
    r#"
    ALTER TABLE accounts ADD COLUMN expires_ms BIGINT;
    CREATE INDEX accounts_by_expiry ON accounts (expires_ms) WHERE expires_ms IS NOT NULL;
    "#,
    // 5: the price history (prices.rs): every fetched price per symbol,
    // written with the log row of the fetch, the newest 1,000 per symbol
    // kept. seq is that log row's.
    r#"
    CREATE TABLE price_history (
        symbol TEXT COLLATE "C" NOT NULL,
        at_ms  BIGINT NOT NULL,
        seq    BIGINT NOT NULL,
        price  BIGINT NOT NULL,
        PRIMARY KEY (symbol, at_ms, seq)
    );
    "#,
    // 6: price generations (prices.rs): every batch that adds price points
    // counts one more in its instance's row, so the sum of the rows moves
    // on exactly when the price history gains a point; a kept summary
    // whose sum still stands needs no look at its prices.
    r#"
    CREATE TABLE price_generations (
        server TEXT COLLATE "C" PRIMARY KEY,
        n      BIGINT NOT NULL
    );
    "#,
    // 7: the fence of a batch written from the accounts an instance kept
    // (committer.rs, the fenced write): raised when an account is no longer
    // at the version the batch started from, which aborts the statement
    // and with it everything the batch wrote. The code is DayTrader's own,
    // so that it is never mistaken for another error.
    r#"
    CREATE FUNCTION daytrader_fence(held boolean) RETURNS boolean
    LANGUAGE plpgsql VOLATILE AS $fence$
    BEGIN
        IF NOT held THEN
            RAISE EXCEPTION 'an account changed since this instance last wrote it'
                USING ERRCODE = 'DTSTA';
        END IF;
        RETURN true;
    END
    $fence$;
    "#,
];

/// Brings the database up to the current schema, waiting for any other
/// instance that is migrating it.
pub(crate) async fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let applied = apply(conn).await;
    // A failed unlock is harmless: the caller closes this connection, and
    // PostgreSQL releases a session's locks when it ends.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    applied
}

async fn apply(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *conn)
    .await?;
    let current: i32 =
        sqlx::query_scalar("SELECT COALESCE(max(version), 0) FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database schema is version {current}, newer than this build's {}; use a newer DayTrader",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(version as i32)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "migrated the PostgreSQL schema");
    }
    Ok(())
}
