//! Leadership among instances: a PostgreSQL session advisory lock held on a
//! connection of its own. The lock lives exactly as long as that session,
//! so a leader that dies (or loses the database) releases it without
//! anyone's help, and another instance's next `try_lead` wins.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// The advisory lock class (first of two 32-bit keys) of leadership locks;
/// the second key is a hash of the role's name.
pub(crate) const LEADER_LOCK_CLASS: i32 = 0x4454_4c44; // "DTLD"

/// The lead of a named role, held until released, dropped, or until its
/// connection dies.
pub struct Lease {
    /// `None` once the connection is known to be dead.
    conn: Option<PgConnection>,
    key: i32,
    /// Bounds every check, so that a silent network cannot stall a leader.
    timeout: Duration,
}

impl Lease {
    pub(crate) fn new(conn: PgConnection, key: i32, timeout: Duration) -> Lease {
        Lease {
            conn: Some(conn),
            key,
            timeout,
        }
    }

    /// Whether the lock is still held: one cheap query on the lease's
    /// connection. False once the connection failed (PostgreSQL then
    /// released the lock, or will when it notices), and from then on.
    pub async fn still_held(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let check = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND pid = pg_backend_pid() AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 2)",
        )
        .bind(i64::from(LEADER_LOCK_CLASS))
        .bind(i64::from(self.key))
        .fetch_one(conn);
        let held = matches!(
            tokio::time::timeout(self.timeout, check).await,
            Ok(Ok(true))
        );
        if !held {
            // Closing the session releases whatever it still holds.
            self.conn = None;
        }
        held
    }

    /// Gives the lead up at once, so another instance can take it without
    /// waiting for this process to end.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlock = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(LEADER_LOCK_CLASS)
                .bind(self.key)
                .execute(&mut conn);
            let _ = tokio::time::timeout(self.timeout, unlock).await;
            let _ = tokio::time::timeout(self.timeout, conn.close()).await;
        }
    }
}
