//! What every case needs: a store on a back end (with a clock the test
//! moves), a way to reopen it on the same data, and small builders for
//! jobs.
//!
//! PostgreSQL tests each get a database of their own, created with a random
//! name and dropped when the test ends (even when it fails). The server is
//! `postgres://postgres@127.0.0.1:5432` unless `DAYTRADER_TEST_PG` names
//! another. When it cannot be reached, a test fails under `CI=true` and is
//! skipped, loudly, otherwise.

use std::io::Write;
use std::process::Command as Process;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use store::{Reads, Writes};

use engine::{CommandName, CommandRequest, Money, Reply, Symbol, UserId};
use futures::StreamExt;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use store::{
    Clock, Done, Job, PgOptions, PgStore, QuoteUse, Reader, Record, SqliteOptions, SqliteStore,
    Store, Work,
};

pub const T0: i64 = 1_700_000_000_000;

/// Runs each listed case (an `async fn(Fixture)`) once per back end, as
/// `<case>::sqlite` and `<case>::postgres`.
macro_rules! on_both_back_ends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use crate::fixture::{Backend, Fixture};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fixture = Fixture::open(Backend::Sqlite).await.expect("SQLite is always there");
                super::$case(fixture).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(fixture) = Fixture::open(Backend::Postgres).await {
                    super::$case(fixture).await;
                }
            }
        }
    )*};
}
pub(crate) use on_both_back_ends;

#[derive(Copy, Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store on fresh data, with the clock it runs on.
pub struct Fixture {
    pub now: Arc<AtomicI64>,
    pub store: Arc<Store>,
    place: Place,
}

/// Where the data lives; dropping it removes it.
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl Fixture {
    /// `None` when PostgreSQL is unreachable outside CI (the test is then
    /// skipped, with a note on stderr).
    pub async fn open(backend: Backend) -> Option<Fixture> {
        let now = Arc::new(AtomicI64::new(T0));
        let place = match backend {
            Backend::Sqlite => Place::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => {
                let database = PgDatabase::reserve().await?;
                database.create().await;
                Place::Postgres(database)
            }
        };
        let store = Arc::new(open_store(&place, &now).await);
        Some(Fixture { now, store, place })
    }

    pub fn reader(&self) -> Reader {
        self.store.reader()
    }

    /// Closes the store and opens a new one on the same data (for
    /// PostgreSQL: a new instance on the same database).
    pub async fn reopen(self) -> Fixture {
        let Fixture { now, store, place } = self;
        store.close().await;
        // The old store must be gone first: SQLite's lock file is released
        // when it drops.
        assert_eq!(Arc::strong_count(&store), 1, "a test still holds the store");
        drop(store);
        let store = Arc::new(open_store(&place, &now).await);
        Fixture { now, store, place }
    }
}

fn test_clock(now: &Arc<AtomicI64>) -> Clock {
    let now = now.clone();
    Arc::new(move || now.load(Ordering::SeqCst))
}

async fn open_store(place: &Place, now: &Arc<AtomicI64>) -> Store {
    match place {
        Place::Sqlite(dir) => Store::Sqlite(open_sqlite(dir.path(), now).unwrap()),
        Place::Postgres(database) => {
            let store = database.store(now, "test-1", |_| {});
            wait_until_ready(&store).await;
            Store::Postgres(store)
        }
    }
}

pub fn open_sqlite(
    dir: &std::path::Path,
    now: &Arc<AtomicI64>,
) -> Result<SqliteStore, store::StoreError> {
    SqliteStore::open(SqliteOptions {
        data_dir: dir.to_path_buf(),
        server: "test-1".into(),
        clock: test_clock(now),
        max_batch: 256,
    })
}

/// Waits (without bound on speed, with one on hanging) for a PostgreSQL
/// store to reach its database.
pub async fn wait_until_ready(store: &PgStore) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !store.is_ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server tests use, without a database name.
fn pg_base() -> String {
    std::env::var("DAYTRADER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A database of the test server, dropped (with its connections) when this
/// is dropped.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl PgDatabase {
    /// Picks a name for a database that does not exist yet; `None` (after
    /// a loud note) when the server cannot be reached outside CI.
    pub async fn reserve() -> Option<PgDatabase> {
        let base = pg_base();
        let admin_url = format!("{base}/postgres");
        if let Err(why) = reachable(&admin_url).await {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required in CI, and {base} cannot be reached: {why}");
            }
            skipped_loudly(&base, why);
            return None;
        }
        let name = format!("daytrader_test_{:016x}", fastrand::u64(..));
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }

    pub async fn create(&self) {
        let mut conn = PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{}\"", self.name)))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
    }

    /// A new instance on this database, as `server`.
    pub fn store(
        &self,
        now: &Arc<AtomicI64>,
        server: &str,
        tweak: impl FnOnce(&mut PgOptions),
    ) -> PgStore {
        let mut options = PgOptions::new(self.url.clone(), server.into(), test_clock(now));
        options.max_batch = 256;
        tweak(&mut options);
        PgStore::connect(options)
    }

    /// A plain connection to this database, for what the store's API does
    /// not offer (holding a lock, inspecting tables).
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }
}

/// Whether the test server answers; asked once per test run.
async fn reachable(admin_url: &str) -> &'static Result<(), String> {
    static REACHABLE: tokio::sync::OnceCell<Result<(), String>> =
        tokio::sync::OnceCell::const_new();
    REACHABLE
        .get_or_init(|| async {
            let connect = PgConnection::connect(admin_url);
            match tokio::time::timeout(Duration::from_secs(10), connect).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("no answer within 10 s".to_owned()),
            }
        })
        .await
}

/// Says, once per run and past the test harness's output capture (which
/// hides what passing tests print), that PostgreSQL tests were skipped.
fn skipped_loudly(base: &str, why: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPING every PostgreSQL test: {base} cannot be reached ({why}). Start \
             PostgreSQL (pg_ctlcluster 15 main start) or point DAYTRADER_TEST_PG at one; \
             with CI=true these tests fail instead. ***\n"
        );
    });
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // a thread of its own with a runtime of its own does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await?;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop the test database {}: {error}", self.name);
        }
    }
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

pub fn request(
    name: CommandName,
    who: Option<&str>,
    symbol: Option<&str>,
    amount: Option<&str>,
) -> CommandRequest {
    CommandRequest::new(name, who, symbol, amount, None).unwrap()
}

pub fn cached(symbol: &str, cents: i64) -> Option<QuoteUse> {
    Some(QuoteUse::Cached {
        symbol: Symbol::parse(symbol).unwrap(),
        price: Money::from_cents(cents),
    })
}

pub fn job(who: &str, key: Option<i64>, request: CommandRequest, quote: Option<QuoteUse>) -> Job {
    Job {
        user: Some(user(who)),
        idem_key: key,
        work: Work::Command { request, quote },
    }
}

pub fn add(who: &str, key: i64, amount: &str) -> Job {
    job(
        who,
        Some(key),
        request(CommandName::Add, Some(who), None, Some(amount)),
        None,
    )
}

/// u1 ADDs 100.00 (transaction 1) and places a BUY of 50.00 of `symbol`
/// at `cents` (transaction 2), and the clock moves to when it runs out:
/// u1's next step finds it expired.
pub async fn let_a_buy_run_out(f: &Fixture, symbol: &str, cents: i64) {
    f.store.submit(add("u1", 1, "100.00")).await.unwrap();
    let buy = priced("u1", 2, CommandName::Buy, symbol, "50.00", cents);
    f.store.submit(buy).await.unwrap();
    f.now.fetch_add(engine::PENDING_TTL_MS, Ordering::SeqCst);
}

/// A command without arguments (COMMIT_BUY, DISPLAY_SUMMARY, ...).
pub fn bare(who: &str, key: i64, name: CommandName) -> Job {
    job(who, Some(key), request(name, Some(who), None, None), None)
}

/// A command on `symbol` at a fixed (cached) price.
pub fn priced(
    who: &str,
    key: i64,
    name: CommandName,
    symbol: &str,
    amount: &str,
    cents: i64,
) -> Job {
    job(
        who,
        Some(key),
        request(name, Some(who), Some(symbol), Some(amount)),
        cached(symbol, cents),
    )
}

pub fn global_dumplog(key: i64) -> Job {
    Job {
        user: None,
        idem_key: Some(key),
        work: Work::Command {
            request: CommandRequest::new(CommandName::DumpLog, None, None, None, Some("./testLOG"))
                .unwrap(),
            quote: None,
        },
    }
}

pub fn outcome(done: &Done) -> &Result<Reply, engine::Rejection> {
    match &done.record {
        Record::Command { outcome, .. } => outcome,
        other => panic!("not a command: {other:?}"),
    }
}

pub async fn cash(reader: &Reader, who: &str) -> Money {
    reader
        .account(&user(who))
        .await
        .unwrap()
        .unwrap()
        .account
        .cash()
}

/// The whole XML dump, of one user or of everyone.
pub async fn dump(reader: &Reader, who: Option<&str>, upto: i64) -> String {
    let chunks: Vec<_> = reader.stream_log(who.map(user), upto).collect().await;
    let bytes: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// Validates XML against the project's copy of the course schema. In CI a
/// missing xmllint is a failure; elsewhere the check is skipped loudly.
pub fn assert_valid_xml(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (doc, xsd) = (dir.path().join("dump.xml"), dir.path().join("logfile.xsd"));
    std::fs::write(&doc, xml).unwrap();
    std::fs::write(&xsd, store::LOG_SCHEMA_XSD).unwrap();
    match Process::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&doc)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "invalid XML: {}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("xmllint is required in CI: {e}")
        }
        Err(e) => eprintln!("SKIPPED schema validation, xmllint not found: {e}"),
    }
}
