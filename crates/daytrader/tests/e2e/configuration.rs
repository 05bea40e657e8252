//! Configuration as an operator gives it, tested for real: PostgreSQL by
//! its parts and a password it checks, secrets in files, a Redis that
//! requires a password.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::cluster::wait_until;
use crate::helpers::{App, Options, TOKEN, spawn_with};
use crate::infra::{PrivatePostgres, PrivateRedis, free_port};

/// A password with every character a URL or a shell would trip on.
const DB_PASSWORD: &str = "p@ss w:rd/?#%é";
const DB_USER: &str = "trader";
const DB_NAME: &str = "trading";

/// A PostgreSQL that checks passwords, with a role and a database for the
/// server.
fn postgres_with_a_password() -> Option<PrivatePostgres> {
    let postgres = PrivatePostgres::start_requiring_passwords()?;
    postgres.admin_sql(&format!(
        "CREATE ROLE {DB_USER} LOGIN PASSWORD '{}'",
        DB_PASSWORD.replace('\'', "''")
    ));
    postgres.admin_sql(&format!("CREATE DATABASE {DB_NAME} OWNER {DB_USER}"));
    Some(postgres)
}

fn by_parts(postgres: &PrivatePostgres) -> Vec<(&'static str, String)> {
    vec![
        ("DB_HOST", "127.0.0.1".into()),
        ("DB_PORT", postgres.port.to_string()),
        ("DB_NAME", DB_NAME.into()),
        ("DB_USER", DB_USER.into()),
    ]
}

/// The server runs commands on the database it was pointed at.
async fn serves_commands(app: &App, user: &str) {
    let add = app
        .command(json!({"command": "ADD", "user": user, "amount": "5.00", "transaction_num": 1}))
        .await;
    assert_eq!(add.status, 200, "{}", add.text());
}

#[tokio::test]
async fn postgresql_by_its_parts_with_a_password() {
    let Some(postgres) = postgres_with_a_password() else {
        return;
    };
    let mut env = by_parts(&postgres);
    env.push(("DB_PASS", DB_PASSWORD.into()));
    let app = spawn_with(Options {
        env,
        ..Options::default()
    });
    serves_commands(&app, "parts").await;
    // The account is in the database named, reached as the role named.
    let count = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &postgres.port.to_string()])
        .args(["-U", DB_USER, "-d", DB_NAME, "-Atc"])
        .arg("SELECT count(*) FROM accounts")
        .env("PGPASSWORD", DB_PASSWORD)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "1");
}

#[tokio::test]
async fn secrets_in_files_the_password_the_url_and_the_admin_token() {
    let Some(postgres) = postgres_with_a_password() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        // A trailing newline, as `echo` and editors leave.
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let token = "token-from-a-file-0123456789";

    let mut env = by_parts(&postgres);
    env.push(("DB_PASS_FILE", secret("db-pass", DB_PASSWORD)));
    env.push(("DAYTRADER_ADMIN_TOKEN_FILE", secret("admin-token", token)));
    let app = spawn_with(Options {
        env,
        no_token: true,
        ..Options::default()
    });
    let refused = app
        .request(Method::GET, "/api/v1/log", Some(TOKEN), None)
        .await;
    assert_eq!(
        refused.status, 401,
        "only the file's token is the supervisor's"
    );
    let add = app
        .request(
            Method::POST,
            "/api/v1/commands",
            Some(token),
            Some((
                "application/json",
                json!({"command": "ADD", "user": "filed", "amount": "5.00", "transaction_num": 1})
                    .to_string()
                    .into_bytes(),
            )),
        )
        .await;
    assert_eq!(add.status, 200, "{}", add.text());
    drop(app);

    let url = store::postgres_url(
        "127.0.0.1",
        postgres.port,
        DB_NAME,
        DB_USER,
        Some(DB_PASSWORD),
    );
    let app = spawn_with(Options {
        env: vec![("DATABASE_URL_FILE", secret("database-url", &url))],
        ..Options::default()
    });
    let summary = app.get("/api/v1/users/filed").await;
    assert_eq!(summary.status, 200, "the same database: {}", summary.text());
}

/// What `/readyz` says of Redis, once it has tried it (while the first
/// connection is under way it says so, and that is not an answer).
async fn redis_check(app: &App) -> String {
    wait_until(Duration::from_secs(30), || async {
        let said = app.get("/readyz").await.json()["checks"]["redis"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let tried = said == "ok"
            || said.starts_with("unavailable") && !said.contains("(connecting to Redis)");
        tried.then_some(said)
    })
    .await
    .unwrap_or_else(|| "never tried".to_owned())
}

#[tokio::test]
async fn a_redis_that_requires_a_password() {
    let password = "redis p@ss:word";
    let Some(redis) = PrivateRedis::start_with(&["--requirepass", password]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("redis-pass");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let with = |extra: Vec<(&'static str, String)>| {
        let mut env = vec![
            ("REDIS_HOST", "127.0.0.1".to_owned()),
            ("REDIS_PORT", redis.port.to_string()),
        ];
        env.extend(extra);
        spawn_with(Options {
            env,
            ..Options::default()
        })
    };

    let app = with(vec![("REDIS_PASSWORD", password.into())]);
    assert_eq!(redis_check(&app).await, "ok");
    drop(app);
    let app = with(vec![(
        "REDIS_PASSWORD_FILE",
        password_file.to_str().unwrap().into(),
    )]);
    assert_eq!(redis_check(&app).await, "ok");
    drop(app);
    // REDIS_URL takes the password too.
    let app = spawn_with(Options {
        env: vec![
            ("REDIS_URL", format!("redis://127.0.0.1:{}/", redis.port)),
            ("REDIS_PASSWORD", password.into()),
        ],
        ..Options::default()
    });
    assert_eq!(redis_check(&app).await, "ok");
    drop(app);
    // Without it, Redis refuses, and the instance serves without the cache.
    let app = with(Vec::new());
    let said = redis_check(&app).await;
    assert!(said.starts_with("unavailable"), "{said}");
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn a_redis_password_without_a_redis_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::helpers::BIN)
        .arg("serve")
        .env("DAYTRADER_DATA_DIR", dir.path())
        .env("PORT", free_port().to_string())
        .env("BIND", "127.0.0.1")
        .env("REDIS_PASSWORD", "secret")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(Duration::from_secs(20), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let Some(status) = exited else {
        let _ = child.kill();
        panic!("it served, ignoring a password for no Redis");
    };
    assert!(!status.success());
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    assert!(said.contains("REDIS_URL or REDIS_HOST"), "{said}");
}
