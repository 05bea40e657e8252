//! What `daytrader workload run` says when it cannot do its job: a token
//! the server refuses, a target that is not there. Either stops the run
//! with a clear message and a non-zero exit, even with `--quiet`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::{BIN, spawn_app};
use crate::infra::free_port;

fn course_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/1userWorkLoad.txt")
}

fn replay(target: &str, token: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["workload", "run"])
        .arg(course_fixture())
        .args(["--target", target, "--token", token, "--quiet", "--out-dir"])
        .arg(out)
        .args(extra)
        .env_remove("DAYTRADER_ADMIN_TOKEN")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_wrong_token_stops_the_replay_with_a_clear_message() {
    let app = spawn_app();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ran = replay(&app.url, "wrong-token-0123456789", &out, &[]);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(!ran.status.success(), "{stdout}");
    assert!(
        stderr.contains("refused the token (401") && stderr.contains("supervisor token"),
        "{stderr}"
    );
    assert!(
        stdout.contains("FAILED") && stdout.contains("not sent"),
        "{stdout}"
    );
    assert!(!out.join("testLOG").exists(), "no DUMPLOG was saved");
    // Nothing ran: the user does not exist.
    assert_eq!(app.get("/api/v1/users/oY01WVirLr").await.status, 404);
}

#[tokio::test]
async fn a_dead_target_is_named_and_stops_the_replay_even_when_quiet() {
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let ran = replay(
        &target,
        "any-token-0123456789",
        &dir.path().join("out"),
        &["--deadline", "2"],
    );
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(!ran.status.success());
    assert!(
        stderr.contains(&format!("cannot connect to {target}")),
        "{stderr}"
    );
    assert!(stderr.contains("stopping the replay"), "{stderr}");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(stdout.contains("stopped: cannot connect"), "{stdout}");
}
