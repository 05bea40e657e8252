//! `daytrader audit verify` on the embedded store: clean after a replay,
//! and a tampered balance is found.

use std::process::Command;

use crate::helpers::{BIN, generate_workload, spawn_app};

#[tokio::test]
async fn audit_verify_catches_a_tampered_balance_in_sqlite() {
    let app = spawn_app();
    let dir = app.data_dir.parent().unwrap().to_path_buf();
    let file = generate_workload(&dir, 5, 500, 9);
    let (report, _) = app.replay(&file).await;
    assert_eq!(report["failed"], 0);

    let audit = || {
        let out = Command::new(BIN)
            .args(["audit", "verify"])
            .env("DAYTRADER_DATA_DIR", &app.data_dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (clean, said) = audit();
    assert!(
        clean && said.contains("exactly what the log says"),
        "{said}"
    );

    // Written beside the running server, as an intruder would.
    let db = rusqlite::Connection::open(app.data_dir.join("daytrader.sqlite3")).unwrap();
    let (user, hex): (String, String) = db
        .query_row(
            "SELECT user_id, hex(state) FROM accounts ORDER BY user_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let tampered = crate::tamper::add_a_cent(&hex.to_lowercase());
    db.execute(
        &format!("UPDATE accounts SET state = X'{tampered}' WHERE user_id = ?1"),
        [&user],
    )
    .unwrap();
    let (clean, said) = audit();
    assert!(!clean, "the tampering went unnoticed: {said}");
    assert!(
        said.contains(&format!("user {user}: cash stored")),
        "{said}"
    );
}
