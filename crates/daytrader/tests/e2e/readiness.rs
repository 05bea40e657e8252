//! Readiness follows writes: a store that answers reads but cannot write
//! (a full disk, a database turned read-only) answers every command 503,
//! and `/readyz` says not ready, so that a balancer stops sending it
//! commands; once a write goes through again, it is ready again.
//!
//! A full disk is simulated with the server's file-size limit
//! (RLIMIT_FSIZE, set from outside with prlimit(2)): every write to a file
//! fails as on a full disk, and nothing else changes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::wait_until;
use crate::helpers::{App, Options, spawn_app, spawn_with};
use crate::infra::PrivatePostgres;

fn add(user: &str, txn: i64) -> Value {
    json!({"command": "ADD", "user": user, "amount": "1.00", "transaction_num": txn})
}

/// `/readyz`: its status and what it says of the database.
async fn readiness(app: &App) -> (u16, String) {
    let reply = app.get("/readyz").await;
    let said = reply.json()["checks"]["database"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (reply.status, said)
}

async fn ready_again(app: &App) {
    let ready = wait_until(Duration::from_secs(20), || async {
        (readiness(app).await.0 == 200).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "still not ready: {:?}",
        readiness(app).await
    );
}

/// Sets the largest file `pid` may write (`None`: no limit).
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = bytes.unwrap_or(libc::RLIM_INFINITY);
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit(2) reads the struct given and writes nothing back.
    let done = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &rlimit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test]
async fn embedded_on_a_full_disk_is_not_ready_until_writes_succeed() {
    let app = spawn_app();
    assert_eq!(app.command(add("disk", 1)).await.status, 200);
    assert_eq!(readiness(&app).await, (200, "ok".to_owned()));

    limit_file_size(app.pid(), Some(0));
    let refused = app.command(add("disk", 2)).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (503, "database_unavailable"),
        "{}",
        refused.text()
    );
    let (status, said) = readiness(&app).await;
    assert_eq!(status, 503, "{said}");
    assert!(said.starts_with("cannot write"), "{said}");
    // Reads still work meanwhile.
    assert_eq!(app.get("/api/v1/users/disk").await.json()["cash"], "1.00");
    // Still not ready while the disk is full, with no command to try.
    assert_eq!(readiness(&app).await.0, 503);

    limit_file_size(app.pid(), None);
    ready_again(&app).await;
    // The command refused with a 503 runs now, once.
    assert_eq!(app.command(add("disk", 2)).await.status, 200);
    assert_eq!(app.get("/api/v1/users/disk").await.json()["cash"], "2.00");
}

#[tokio::test]
async fn a_postgresql_refusing_writes_is_not_ready_until_it_takes_them() {
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let database = postgres.database();
    let app = spawn_with(Options {
        env: vec![("DATABASE_URL", database.url.clone())],
        ..Options::default()
    });
    assert_eq!(app.command(add("ro", 1)).await.status, 200);

    database.sql("ALTER SYSTEM SET default_transaction_read_only = on");
    database.sql("SELECT pg_reload_conf()");
    // Every session reads the new setting before its next statement; a
    // command may still go through while the reload spreads.
    let mut txn = 1;
    let refused = wait_until(Duration::from_secs(20), || {
        txn += 1;
        let body = add("ro", txn);
        let app = &app;
        async move {
            let reply = app.command(body).await;
            (reply.status == 503).then_some(reply)
        }
    })
    .await
    .expect("a command is refused once PostgreSQL refuses writes");
    assert_eq!(refused.code(), "database_unavailable", "{}", refused.text());
    let (status, said) = readiness(&app).await;
    assert_eq!(status, 503, "{said}");
    assert!(
        said.contains("cannot write") && said.contains("read-only"),
        "{said}"
    );
    assert_eq!(app.get("/api/v1/users/ro").await.status, 200, "reads work");

    database.sql("ALTER SYSTEM RESET default_transaction_read_only");
    database.sql("SELECT pg_reload_conf()");
    ready_again(&app).await;
    let ran = app.command(add("ro", txn)).await;
    assert_eq!(ran.status, 200, "{}", ran.text());
    let cash = app.get("/api/v1/users/ro").await.json()["cash"].clone();
    assert_eq!(cash, format!("{txn}.00"), "every command once");
}
