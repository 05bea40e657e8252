//! The load-balanced cluster, started with `scripts/cluster` as an operator
//! would: distribution and failover under SIGKILL behind each of the three
//! balancers (HAProxy, nginx, pen), drain under SIGTERM, persistence across
//! `down` and `up`, the operator's token, and an `up` that fails cleanly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::cluster::wait_until;
use crate::helpers::generate_workload;
use crate::local_cluster::LocalCluster;
use crate::oracle::{assert_accounts_as_read, assert_each_command_once, expected_as_logged};

async fn instances_serving(cluster: &LocalCluster, requests: usize) -> BTreeMap<String, usize> {
    count_instances(cluster, requests, false).await
}

/// pen balances connections, not requests (it sees only TCP): a new
/// connection for each request shows the spread.
async fn instances_serving_new_connections(
    cluster: &LocalCluster,
    requests: usize,
) -> BTreeMap<String, usize> {
    count_instances(cluster, requests, true).await
}

/// Which instance served each of `requests` requests, over the cluster's
/// kept-alive connections or a new connection each.
async fn count_instances(
    cluster: &LocalCluster,
    requests: usize,
    new_connections: bool,
) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..requests {
        let fresh;
        let client = if new_connections {
            fresh = crate::helpers::Http::new(cluster.url.clone());
            &fresh
        } else {
            &**cluster
        };
        let reply = client
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
        if lb == "nginx" {
            assert!(
                seen.values().all(|&n| n == 10),
                "{lb} round robin: {seen:?}"
            );
        }

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

/// HAProxy hashes on the trader: every request of one trader, whether a
/// command (the user in its body) or a per-user path, reaches the same
/// instance, and traders spread over all of them.
#[tokio::test]
async fn haproxy_keeps_each_trader_on_one_instance() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let mut homes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for round in 0..4 {
        for trader in 0..12 {
            let user = format!("affine{trader}");
            let body = json!({"command": "ADD", "user": user, "amount": "1.00",
                              "transaction_num": round + 1});
            let reply = cluster
                .request(
                    hyper::Method::POST,
                    "/api/v1/commands",
                    Some(cluster.token()),
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            let summary = cluster
                .request(
                    hyper::Method::GET,
                    &format!("/api/v1/users/{user}"),
                    Some(cluster.token()),
                    None,
                )
                .await;
            assert_eq!(summary.status, 200);
            for reply in [reply, summary] {
                let instance = reply.header("x-instance-id").unwrap().to_owned();
                homes.entry(user.clone()).or_default().push(instance);
            }
        }
    }
    for (user, served) in &homes {
        assert!(served.iter().all(|i| *i == served[0]), "{user}: {served:?}");
    }
    let used: std::collections::BTreeSet<_> = homes.values().map(|s| s[0].clone()).collect();
    assert!(used.len() >= 2, "twelve traders on one instance: {homes:?}");
}

#[tokio::test]
async fn a_replay_survives_an_instance_killed_mid_way() {
    let Some(cluster) = LocalCluster::up("haproxy", 3, &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = loadgen::testing::course_file_if_present("100User_testWorkLoad.txt")
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

#[tokio::test]
async fn pen_spreads_connections_over_every_instance() {
    let Some(cluster) = LocalCluster::up("pen", 3, &[]) else {
        return;
    };
    let seen = instances_serving_new_connections(&cluster, 30).await;
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["web1", "web2", "web3"],
        "{seen:?}"
    );
    assert!(seen.values().all(|&n| n == 10), "round robin: {seen:?}");
}

/// HAProxy's own test is `a_replay_survives_an_instance_killed_mid_way`.
#[tokio::test]
async fn a_replay_survives_an_instance_killed_behind_nginx_and_pen() {
    for lb in ["nginx", "pen"] {
        let Some(cluster) = LocalCluster::up(lb, 3, &[]) else {
            return;
        };
        // The balancer sends new requests to the others, and the replayer
        // retries what was cut off, with the same transaction numbers.
        let dir = tempfile::tempdir().unwrap();
        let file = generate_workload(dir.path(), 20, 4000, 21);
        let fault = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cluster.signal("web2", libc::SIGKILL);
        };
        crate::faults::survives(&cluster, &file, &["--rate", "400"], fault).await;
        let after = instances_serving_new_connections(&cluster, 12).await;
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            ["web1", "web3"],
            "{lb}: the dead one serves nothing: {after:?}"
        );
    }
}

#[tokio::test]
async fn up_takes_the_operators_token() {
    let token = "operator-chosen-token-0123456789";
    let Some(cluster) = LocalCluster::up_on(
        "haproxy",
        1,
        &[],
        vec![("DAYTRADER_ADMIN_TOKEN", token.into())],
    ) else {
        return;
    };
    assert_eq!(cluster.token(), token);
    let reply = cluster
        .request(hyper::Method::GET, "/api/v1/log", Some(token), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// A TCP socket bound to `port` on 127.0.0.1 but not listening: invisible
/// to anything that looks for listeners, yet no one else can bind there.
struct BoundSocket(i32);

impl BoundSocket {
    fn bind(port: u16) -> BoundSocket {
        // SAFETY: plain socket calls on a descriptor this struct owns; the
        // address is a valid sockaddr_in for the length given.
        unsafe {
            // Close-on-exec: the processes other tests start meanwhile (from
            // this same test process) must not inherit it and keep the
            // port after this test lets go.
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let address = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                },
                sin_zero: [0; 8],
            };
            let bound = libc::bind(
                fd,
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(bound, 0, "{}", std::io::Error::last_os_error());
            BoundSocket(fd)
        }
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this struct owns, once.
        unsafe { libc::close(self.0) };
    }
}

/// The ports of the cluster something still answers on.
fn answering(cluster: &LocalCluster) -> Vec<u16> {
    let base = cluster.port;
    (0..=3)
        .chain(90..=92)
        .map(|offset| base + offset)
        .filter(|&port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        .collect()
}

#[tokio::test]
async fn a_failed_up_names_the_taken_port_and_stops_what_it_started() {
    let Some(mut cluster) = LocalCluster::prepare("haproxy", 3, Vec::new()) else {
        return;
    };
    let web2 = cluster.port + 2;
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    // Something listens there: found before anything starts.
    let listener = std::net::TcpListener::bind(("127.0.0.1", web2)).unwrap();
    let out = cluster.start("haproxy", 3, &[]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains(&format!("port {web2}, for web2, is taken")),
        "{said}"
    );
    assert_eq!(answering(&cluster), [web2], "only the test's own listener");
    drop(listener);

    // A socket bound there without listening: only web2 finds out, when it
    // cannot listen. The up fails naming it and stops what it started.
    let bound = BoundSocket::bind(web2);
    let out = cluster.start("haproxy", 3, &[]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains(&format!("web2 stopped on port {web2}")),
        "{said}"
    );
    assert!(said.contains("stopping what it started"), "{said}");
    assert_eq!(answering(&cluster), Vec::<u16>::new(), "{said}");
    assert!(
        cluster.status().values().all(|&(_, _, up)| !up),
        "{:?}",
        cluster.status()
    );
    drop(bound);

    // The next up starts clean.
    let out = cluster.start("haproxy", 3, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    cluster.env = cluster.read_env();
    assert_eq!(instances_serving(&cluster, 30).await.len(), 3);
}
