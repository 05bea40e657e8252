//! The load-balanced cluster, started with `scripts/cluster` as an operator
//! would: distribution, failover under SIGKILL, drain under SIGTERM,
//! persistence across `down` and `up`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::cluster::wait_until;
use crate::helpers::{course_file, generate_workload};
use crate::local_cluster::LocalCluster;
use crate::oracle::{assert_accounts_as_read, assert_each_command_once, expected_as_logged};

async fn instances_serving(cluster: &LocalCluster, requests: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..requests {
        let reply = cluster
            .request(hyper::Method::GET, "/healthz", None, None)
            .await;
        *seen
            .entry(reply.header("x-instance-id").unwrap().to_owned())
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn both_balancers_spread_requests_over_every_instance() {
    for lb in ["haproxy", "nginx"] {
        let Some(cluster) = LocalCluster::up(lb, 3, &[]) else {
            return;
        };
        let seen = instances_serving(&cluster, 30).await;
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            ["web1", "web2", "web3"],
            "{lb}: {seen:?}"
        );
        assert!(
            seen.values().all(|&n| n == 10),
            "{lb} round robin: {seen:?}"
        );

        // The request id set at the edge reaches the instance's log.
        let reply = cluster
            .request(hyper::Method::GET, "/readyz", None, None)
            .await;
        let id = reply
            .header("x-request-id")
            .expect("an edge request id")
            .to_owned();
        let instance = reply.header("x-instance-id").unwrap().to_owned();
        assert!(
            id.len() >= 16 && !id.starts_with("web"),
            "{lb} sets it, not the instance: {id}"
        );
        let logged = wait_until(Duration::from_secs(5), || async {
            let log = std::fs::read_to_string(cluster.logs().join(format!("{instance}.log")))
                .unwrap_or_default();
            log.contains(&id).then_some(())
        })
        .await;
        assert!(logged.is_some(), "{lb}: {instance} logged request {id}");
        // A client's own id is kept.
        let mine = cluster
            .try_request(
                hyper::Request::get(format!("{}/healthz", cluster.url))
                    .header("x-request-id", "client-chosen-id-42")
                    .body(Default::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            mine.header("x-request-id"),
            Some("client-chosen-id-42"),
            "{lb}"
        );
    }
}

#[tokio::test]
async fn a_replay_survives_an_instance_killed_mid_way() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = course_file("100User_testWorkLoad.txt")
        .unwrap_or_else(|| generate_workload(dir.path(), 100, 30_000, 3));
    let out = dir.path().join("out");
    let killer = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.signal("web2", libc::SIGKILL);
        let down = wait_until(Duration::from_secs(10), || async {
            (cluster
                .haproxy_states()
                .await
                .get("web2")
                .map(String::as_str)
                == Some("DOWN"))
            .then_some(())
        })
        .await;
        assert!(
            down.is_some(),
            "the stats page shows web2 down: {:?}",
            cluster.haproxy_states().await
        );
    };
    let (report, ()) = tokio::join!(cluster.replay(&file, &out), killer);
    // The course file leaves buys pending for later commits, and a replay
    // may outlive an order's 60 s (a debug build on a loaded machine): the
    // oracle runs each command at the time the server recorded for it, so
    // the same orders expire in both, whatever the replay's speed.
    let dump = out.join("testLOG");
    let expected = expected_as_logged(&file, &dump);
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["commands"], expected.commands as u64);
    let rejected: BTreeMap<String, u64> =
        serde_json::from_value(report["rejected_by_code"].clone()).unwrap();
    assert_eq!(rejected, expected.rejected_by_code, "refusals by code");

    assert_accounts_as_read(&cluster, cluster.token(), &expected.accounts).await;
    // Every command exactly once in the audit log.
    assert_each_command_once(&dump, expected.commands);
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");

    cluster.restart("web2");
    let back = wait_until(Duration::from_secs(15), || async {
        (cluster
            .haproxy_states()
            .await
            .get("web2")
            .map(String::as_str)
            == Some("UP"))
        .then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "the stats page shows web2 back: {:?}",
        cluster.haproxy_states().await
    );
    assert_eq!(instances_serving(&cluster, 30).await.len(), 3);
}

#[tokio::test]
async fn an_instance_drained_with_sigterm_cuts_off_no_request() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = generate_workload(dir.path(), 60, 15_000, 8);
    let drain = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.signal("web1", libc::SIGTERM);
        let stopped = wait_until(Duration::from_secs(20), || async {
            (!cluster.status()["web1"].2).then_some(())
        })
        .await;
        assert!(stopped.is_some(), "web1 stopped after SIGTERM");
    };
    let out = dir.path().join("out");
    let (report, ()) = tokio::join!(cluster.replay(&file, &out), drain);
    assert_eq!(report["failed"], 0, "{report:#}");
    let log = std::fs::read_to_string(cluster.logs().join("web1.log")).unwrap();
    assert!(
        log.contains("finishing requests in flight") && log.contains("stopped"),
        "a graceful stop:\n{log}"
    );
    let (clean, said) = cluster.audit();
    assert!(clean, "{said}");
}

#[tokio::test]
async fn data_survives_down_and_up_but_not_fresh() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let body = json!({"command": "ADD", "user": "kept", "amount": "12.34", "transaction_num": 1})
        .to_string();
    let add = cluster
        .request(
            hyper::Method::POST,
            "/api/v1/commands",
            Some(cluster.token()),
            Some(("application/json", body.into_bytes())),
        )
        .await;
    assert_eq!(add.status, 200, "{}", add.text());
    // A new client each time: the old balancer's pooled connections die with it.
    let summary = || async {
        let client = crate::helpers::Http::new(cluster.url.clone());
        client
            .request(
                hyper::Method::GET,
                "/api/v1/users/kept",
                Some(cluster.token()),
                None,
            )
            .await
    };

    cluster.down();
    assert!(cluster.status().values().all(|(_, _, up)| !up) || cluster.status().is_empty());
    cluster.up_again(&[]);
    assert_eq!(
        summary().await.json()["cash"],
        "12.34",
        "kept across down and up"
    );
    cluster.down();
    cluster.up_again(&["--fresh"]);
    assert_eq!(summary().await.status, 404, "--fresh starts empty");
}
