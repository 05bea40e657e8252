//! Copies the write-ahead log back into the database file, on a thread of
//! its own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the
//! threshold, on the committer: a tenth of the committer's time went there,
//! and every command in that batch waited for it (docs/benchmarks.md). Here
//! a second connection runs passive checkpoints on a short period instead;
//! passive checkpoints never block the writer, and SQLite lets one run
//! while the committer writes. The committer's own, rarer checkpoint then
//! finds almost nothing left to copy, and starts the log over (mod.rs).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the log is copied back. At the write rates measured, the log
/// holds a few megabytes between two checkpoints.
const PERIOD: Duration = Duration::from_millis(100);

/// The checkpoint thread; dropping it (or [`Checkpointer::stop`]) ends it.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        // A checkpoint waits for the writer's lock at most this long, then
        // tries again next period.
        conn.busy_timeout(Duration::from_millis(50))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Ends the thread after a last checkpoint.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    loop {
        let last = !matches!(
            stopped.recv_timeout(PERIOD),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        // (busy, frames in the log, frames copied); a busy or failed
        // checkpoint is retried next period, and the data is safe in the
        // log meanwhile.
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        });
        match result {
            Ok((_, frames)) => {
                metrics::gauge!("store_wal_frames").set(frames as f64);
            }
            Err(error) => tracing::warn!(%error, "a WAL checkpoint failed; retrying"),
        }
        if last {
            return;
        }
    }
}
