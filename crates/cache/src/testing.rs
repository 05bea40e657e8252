//! Redis for tests (the `testing` feature): the shared server, private
//! `redis-server` processes that a test may kill and restart, and key
//! prefixes no other test uses.
//!
//! Tests use real Redis processes, never a mock. When Redis is missing —
//! the shared server is not running, or `redis-server` is not installed —
//! a test is skipped loudly, except under `CI=true`, where a skipped test
//! would hide a broken environment, so it fails instead.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::redis_url;

/// Where the shared test Redis listens.
pub const SHARED_PORT: u16 = 6379;

/// How long a Redis that was just started may take to accept connections.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// A key prefix that no other test, and no other run, uses: `test` names
/// it in `redis-cli` listings.
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test:{test}:{}-{nanos}-{n}:", std::process::id())
}

/// The URL of the shared Redis on 127.0.0.1:6379 if it answers; `None`
/// (after saying so on stderr) if it does not and the test should be
/// skipped.
///
/// # Panics
///
/// If it does not answer under `CI=true`.
pub fn shared_redis(test: &str) -> Option<String> {
    if answers_ping(SHARED_PORT) {
        Some(redis_url("127.0.0.1", SHARED_PORT))
    } else {
        missing(
            test,
            "no Redis answers on 127.0.0.1:6379 (start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no)",
        )
    }
}

/// A `redis-server` of a test's own, on a free port, without persistence:
/// the test may kill it and start it again. Killed when dropped.
pub struct PrivateRedis {
    port: u16,
    process: Option<Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it answers; `None` (after saying so on
    /// stderr) if `redis-server` is not installed and the test should be
    /// skipped.
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing under `CI=true`, or does not start.
    pub fn start(test: &str) -> Option<PrivateRedis> {
        let mut redis = PrivateRedis::not_started(test)?;
        redis.restart();
        Some(redis)
    }

    /// A free port where nothing listens yet, for a test that needs a Redis
    /// that is down from the start: [`PrivateRedis::restart`] brings it up.
    /// `None` as for [`PrivateRedis::start`].
    pub fn not_started(test: &str) -> Option<PrivateRedis> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            return missing(
                test,
                "redis-server is not installed (apt-get install redis-server)",
            );
        }
        Some(PrivateRedis {
            port: free_port(),
            process: None,
        })
    }

    pub fn url(&self) -> String {
        redis_url("127.0.0.1", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it
    /// is gone. Without persistence, everything it held is lost.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            // It may have died already; either way it is gone after `wait`.
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Stops the server with SIGSTOP: it keeps its connections but answers
    /// nothing, as a hung or overloaded Redis would.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server carry on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the private Redis is running");
        let sent = Command::new("kill")
            .args([signal, &process.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal} failed");
    }

    /// Starts the server (again) on the same port and waits until it
    /// answers.
    ///
    /// # Panics
    ///
    /// If it is running, or does not answer within ten seconds.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "the private Redis is running");
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(process);
        let started = Instant::now();
        while !answers_ping(self.port) {
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "redis-server on port {} did not answer within {STARTUP_LIMIT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Skips a test whose Redis is missing, loudly; fails it under `CI=true`.
fn missing<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {why}; CI=true, so this is a failure rather than a skip");
    }
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` and shows it only for failed tests, and a skip must be
    // seen.
    let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: {why} ***");
    None
}

/// A port the kernel just handed out, so nothing else listens there.
fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// Whether a Redis on 127.0.0.1:`port` answers `PING` with `+PONG`.
fn answers_ping(port: u16) -> bool {
    let limit = Duration::from_millis(500);
    let exchange = || -> std::io::Result<bool> {
        let mut stream =
            TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), limit)?;
        stream.set_read_timeout(Some(limit))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    exchange().unwrap_or(false)
}
