//! Browser tests: headless Chromium, driven over WebDriver by the system's
//! chromedriver, uses the web pages as traders would, through HAProxy in
//! front of three instances on PostgreSQL and Redis (`scripts/cluster`).
//! Every scenario saves screenshots of its key steps to
//! `target/browser-screenshots/<scenario>-<step>.png`.
//!
//! A missing chromium, chromedriver, PostgreSQL, Redis or HAProxy skips the
//! suite loudly, except in CI (`CI=true`), where it fails.

// The e2e suite's helpers, shared rather than copied. This suite uses only
// part of them (no single-instance `App`, no private PostgreSQL or Redis),
// so what it leaves unused is not dead code, only someone else's.
#[allow(dead_code)]
#[path = "../e2e/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../e2e/infra.rs"]
mod infra;
#[allow(dead_code)]
#[path = "../e2e/local_cluster.rs"]
mod local_cluster;

mod accounts;
mod browser;
mod failures;
mod journey;
mod live;
mod money;
mod supervisor;
mod walkthrough;

use crate::browser::run;
use crate::local_cluster::LocalCluster;

/// One cluster for every scenario, each in a browser of its own and with
/// users of its own, all at once: a cluster per scenario would cost more
/// than the scenarios, and clusters started side by side may pick
/// overlapping ports (HAProxy binds with SO_REUSEPORT, so it would not
/// even notice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traders_use_the_web_pages_through_the_balancer() {
    if browser::available().is_none() {
        return;
    }
    // Six browsers, three instances, PostgreSQL and Redis share two cores
    // here: give Redis operations more than the 250 ms a production
    // instance allows, or a starved moment reads as "sessions unavailable".
    let slow_machine = vec![("REDIS_TIMEOUT_MS", "2000".to_owned())];
    let Some(cluster) = LocalCluster::up_on("haproxy", 3, &[], slow_machine) else {
        return;
    };
    let base = format!("http://127.0.0.1:{}", cluster.port);
    let token = cluster.token().to_owned();
    let instances = live::Instances {
        web1: format!("http://127.0.0.1:{}", cluster.port + 1),
        web2: format!("http://127.0.0.1:{}", cluster.port + 2),
    };
    let (journey, refusals, supervisor, walkthrough, accounts, live, money) = tokio::join!(
        run("journey", &base, journey::journey),
        run("refusals", &base, failures::refusals),
        run("supervisor", &base, async |browser| {
            supervisor::supervisor(browser, &token).await
        }),
        run("walkthrough", &base, async |browser| {
            walkthrough::walkthrough(browser, &token).await
        }),
        run("accounts", &base, async |browser| {
            accounts::accounts(browser, &token).await
        }),
        run("live", &base, async |browser| {
            live::live(browser, &instances).await
        }),
        run("money", &base, money::money),
    );
    for (scenario, outcome) in [
        ("journey", journey),
        ("refusals", refusals),
        ("supervisor", supervisor),
        ("walkthrough", walkthrough),
        ("accounts", accounts),
        ("live", live),
        ("money", money),
    ] {
        if let Err(panic) = outcome {
            eprintln!("the {scenario} scenario failed");
            std::panic::resume_unwind(panic);
        }
    }
}
