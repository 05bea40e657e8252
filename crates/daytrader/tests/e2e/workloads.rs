//! Replaying workloads against the real binary: 0 failed, every user's
//! summary right to the cent, a DUMPLOG that validates with one
//! `userCommand` per line.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{App, assert_valid_log, course_file, generate_workload, spawn_app};
use crate::oracle::{assert_summaries_are, expected};

/// Replays `file` and checks everything against the engine oracle.
async fn replay_and_check(app: &App, file: &Path) -> Value {
    let expected = expected(file);
    let (report, out) = app.replay(file).await;
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["commands"], expected.commands as u64);
    let rejected: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(report["rejected_by_code"].clone()).unwrap();
    assert_eq!(rejected, expected.rejected_by_code, "refusals by code");

    assert_summaries_are(app, &expected.accounts).await;

    let dump = out.join("testLOG");
    assert_valid_log(&dump);
    let xml = std::fs::read_to_string(&dump).unwrap();
    assert_eq!(
        xml.matches("<userCommand>").count(),
        expected.commands,
        "one userCommand per line"
    );
    report
}

/// The 1-user course file, checked by hand. One symbol, S, whose fixed
/// price is 100 + (fnv1a_32("S") mod 9900) = 9454 cents; shares are
/// floor(amount / 94.54).
///
/// - Deposits, six ADDs: 63,511.53 + 45,016.23 + 71,879.98 + 74,315.15 +
///   52,802.93 + 87,863.73 = 395,389.55.
/// - Committed buys, 61 shares (the stacks are last-in-first-out, so a
///   commit takes the newest BUY): [3] 2, [13] 3, [25] 1, [27] 6 (at [33]),
///   [40] 6, [43] 7, [45] 2, [51] 4, [38] 2 (at [54]), [63] 4, [81] 3,
///   [86] 7, [84] 4 (at [89]), [77] 3 (at [92]), [96] 7: 61 × 94.54 =
///   5,766.94 spent.
/// - Committed sells, 10 shares: [31] 6 and [61] 4 (at [74]): 945.40.
/// - Everything else comes back: cancelled buys [49], [66], [70], the buy
///   amount of [30] (returned at [56]), cancelled sells [83], [90]; the
///   sell amount of [68] is cancelled at [69] before any trigger.
/// - Still pending at the end: the SELL of [99], 7 shares.
///
/// So cash = 395,389.55 − 5,766.94 + 945.40 = 390,568.01; shares 61 − 10
/// = 51, of which 7 are reserved and 44 spendable. Of the 100 lines, 33 are
/// refused: amount_too_small 3 ([22], [72], [88]: under one share),
/// no_buy_amount 4, no_pending_buy 9, no_pending_sell 10, no_sell_amount 7.
#[tokio::test]
async fn the_one_user_file_matches_the_hand_check() {
    let app = spawn_app();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/1userWorkLoad.txt");
    let report = replay_and_check(&app, &file).await;
    assert_eq!(
        (report["accepted"].as_u64(), report["rejected"].as_u64()),
        (Some(67), Some(33))
    );
    for (code, count) in [
        ("amount_too_small", 3),
        ("no_buy_amount", 4),
        ("no_pending_buy", 9),
        ("no_pending_sell", 10),
        ("no_sell_amount", 7),
    ] {
        assert_eq!(report["rejected_by_code"][code], count, "{code}");
    }
    let summary = app.get("/api/v1/users/oY01WVirLr").await.json();
    assert_eq!(summary["cash"], "390568.01");
    assert_eq!(summary["reserved_cash"], "0.00");
    let holding = &summary["holdings"][0];
    assert_eq!(
        [
            &holding["symbol"],
            &holding["shares"],
            &holding["reserved_shares"]
        ],
        [
            &serde_json::json!("S"),
            &serde_json::json!(44),
            &serde_json::json!(7)
        ]
    );
    assert_eq!(summary["holdings"].as_array().unwrap().len(), 1);
    assert_eq!(summary["pending_sells"][0]["shares"], 7);
    assert_eq!(summary["pending_sells"][0]["price"], "94.54");
    assert_eq!(summary["pending_buys"], serde_json::json!([]));
}

#[tokio::test]
async fn a_generated_workload_matches_the_engine() {
    let app = spawn_app();
    let file = generate_workload(app.data_dir.parent().unwrap(), 25, 6_000, 11);
    replay_and_check(&app, &file).await;
}

#[tokio::test]
async fn the_course_files_match_the_engine() {
    for name in ["10User_testWorkLoad.txt", "45User_testWorkLoad.txt"] {
        let Some(file) = course_file(name) else {
            return;
        };
        // A fresh instance per file: no user appears in two files anyway.
        let app = spawn_app();
        replay_and_check(&app, &file).await;
    }
}
