//! The real services the cluster tests run on: a fresh PostgreSQL database
//! per test on the machine's server, a unique key prefix per test on its
//! Redis, and private Redis and PostgreSQL processes for tests that stop
//! them. A missing service skips a test loudly, except in CI
//! (`CI=true`), where it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PG_HOST: &str = "127.0.0.1";
pub const PG_PORT: u16 = 5432;
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (or, in CI, fails) when a service is missing.
pub fn skip<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "{what} is required in CI");
    eprintln!("SKIPPED: {what} is not available");
    None
}

pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom_bytes(&mut bytes);
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{suffix}")
}

pub fn getrandom_bytes(bytes: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(bytes))
        .expect("/dev/urandom");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn psql(port: u16, database: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            "-h",
            PG_HOST,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database of its own on the machine's PostgreSQL, dropped afterwards.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    port: u16,
}

impl TestDatabase {
    pub fn create() -> Option<TestDatabase> {
        TestDatabase::create_on(PG_PORT)
    }

    fn create_on(port: u16) -> Option<TestDatabase> {
        let name = unique("dt_e2e_");
        if let Err(error) = psql(port, "postgres", &format!("CREATE DATABASE {name}")) {
            return skip(&format!("PostgreSQL on {PG_HOST}:{port} ({error})"));
        }
        Some(TestDatabase {
            url: format!("postgres://postgres@{PG_HOST}:{port}/{name}"),
            name,
            port,
        })
    }

    /// Runs SQL in this database.
    pub fn sql(&self, sql: &str) -> String {
        psql(self.port, &self.name, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = psql(
            self.port,
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Whether the machine's Redis answers.
pub fn shared_redis() -> Option<String> {
    let up = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "ping"])
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"PONG"));
    if up {
        Some(SHARED_REDIS.to_owned())
    } else {
        skip("Redis on 127.0.0.1:6379")
    }
}

/// A Redis of the test's own, to stop and start.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    /// Options beyond the defaults (`--requirepass`).
    options: Vec<String>,
}

impl PrivateRedis {
    pub fn start() -> Option<PrivateRedis> {
        PrivateRedis::start_with(&[])
    }

    /// One started with more of redis-server's options.
    pub fn start_with(options: &[&str]) -> Option<PrivateRedis> {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        };
        redis.resume()?;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port.
    pub fn resume(&mut self) -> Option<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.options)
            .stdout(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            return skip("the redis-server binary");
        };
        self.child = Some(child);
        wait_for_port(self.port);
        Some(())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL server of the test's own (initdb in a temporary
/// directory), to stop and start. Run as the `postgres` user when the tests
/// run as root, since PostgreSQL refuses to run as root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    _temp: tempfile::TempDir,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> Option<PrivatePostgres> {
        PrivatePostgres::start_with_host_auth("trust")
    }

    /// One whose TCP connections must give a password (scram-sha-256), as
    /// a real deployment's would; its Unix socket, in the test's own
    /// directory, stays trusted for [`PrivatePostgres::admin_sql`].
    pub fn start_requiring_passwords() -> Option<PrivatePostgres> {
        PrivatePostgres::start_with_host_auth("scram-sha-256")
    }

    /// Runs SQL as the superuser, over the Unix socket.
    pub fn admin_sql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .arg("-h")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn start_with_host_auth(host_auth: &str) -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|b| b.join("initdb").exists())
            });
        let Some(bin) = bin else {
            return skip("PostgreSQL's server binaries (initdb)");
        };
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("pg");
        std::fs::create_dir(&dir).unwrap();
        chown_postgres(temp.path());
        chown_postgres(&dir);
        let init = as_postgres(&bin.join("initdb"))
            .args([
                "-D",
                dir.to_str().unwrap(),
                "--auth-local=trust",
                &format!("--auth-host={host_auth}"),
                "-U",
                "postgres",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let postgres = PrivatePostgres {
            port: free_port(),
            dir,
            _temp: temp,
            bin,
        };
        postgres.resume();
        Some(postgres)
    }

    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", self.dir.to_str().unwrap(), "-o", &options, "-w", "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fast stop: connections are cut, as in a crash of the server.
    pub fn stop(&self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args([
                "-D",
                self.dir.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }

    pub fn database(&self) -> TestDatabase {
        TestDatabase::create_on(self.port).expect("the private server runs")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn chown_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
