//! A headless Locust run of `deploy/locust/locustfile.py`, and reading its
//! `--json-file` statistics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::model::{LocustEntry, LocustRun};
use crate::procs::Procs;
use crate::ratio;

/// One request name's statistics, as Locust writes them.
#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    method: String,
    num_requests: u64,
    num_failures: u64,
    start_time: f64,
    last_request_timestamp: f64,
    /// Response time in (rounded) milliseconds to how many requests took it.
    response_times: BTreeMap<String, u64>,
}

/// Turns Locust's per-request statistics into the report's.
pub fn parse_stats(json: &str, users: u32) -> anyhow::Result<LocustRun> {
    let entries: Vec<Entry> = serde_json::from_str(json).context("Locust's JSON statistics")?;
    if entries.is_empty() {
        bail!("Locust made no requests");
    }
    let start = entries
        .iter()
        .map(|e| e.start_time)
        .fold(f64::INFINITY, f64::min);
    let end = entries
        .iter()
        .map(|e| e.last_request_timestamp)
        .fold(f64::NEG_INFINITY, f64::max);
    let duration_s = (end - start).max(0.0);
    let requests: u64 = entries.iter().map(|e| e.num_requests).sum();
    let failures: u64 = entries.iter().map(|e| e.num_failures).sum();
    let mut all: Vec<(f64, u64)> = Vec::new();
    let mut by_request = Vec::new();
    for e in &entries {
        let times = times(&e.response_times);
        by_request.push(LocustEntry {
            name: e.name.clone(),
            method: e.method.clone(),
            requests: e.num_requests,
            failures: e.num_failures,
            median_ms: percentile(&times, 0.5),
        });
        all.extend(times);
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_request.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.name.cmp(&b.name)));
    Ok(LocustRun {
        users,
        duration_s,
        requests,
        failures,
        requests_per_s: ratio(requests as f64, duration_s),
        median_ms: percentile(&all, 0.5),
        p95_ms: percentile(&all, 0.95),
        p99_ms: percentile(&all, 0.99),
        by_request,
    })
}

/// The histogram sorted by response time.
fn times(histogram: &BTreeMap<String, u64>) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = histogram
        .iter()
        .filter_map(|(ms, n)| ms.parse::<f64>().ok().map(|ms| (ms, *n)))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The smallest time at or below which a share `q` of the requests took.
fn percentile(sorted: &[(f64, u64)], q: f64) -> f64 {
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (ms, n) in sorted {
        seen += n;
        if seen >= rank {
            return *ms;
        }
    }
    sorted.last().map_or(0.0, |(ms, _)| *ms)
}

/// A headless Locust run.
pub struct LocustSpec {
    /// Locust's executable.
    pub locust: PathBuf,
    pub locustfile: PathBuf,
    /// The balancer's URL.
    pub host: String,
    /// The supervisor token the simulated traders use.
    pub token: String,
    pub users: u32,
    pub duration: Duration,
    /// Where its statistics are written.
    pub dir: PathBuf,
}

/// Runs Locust headless and reads what it measured.
pub async fn run(procs: &Procs, spec: &LocustSpec) -> anyhow::Result<LocustRun> {
    let stats = spec.dir.join("locust");
    let json = spec.dir.join("locust.json");
    let _ = std::fs::remove_file(&json);
    let users = spec.users.to_string();
    let mut command = tokio::process::Command::new(&spec.locust);
    command
        .arg("-f")
        .arg(&spec.locustfile)
        .args(["--headless", "--only-summary", "--loglevel", "WARNING"])
        // Failures are counted in the report, not turned into an error.
        .args(["--exit-code-on-error", "0"])
        .args(["-u", &users, "-r", &users])
        .arg("-t")
        .arg(format!("{}s", spec.duration.as_secs().max(1)))
        .arg("--host")
        .arg(&spec.host)
        .arg("--json-file")
        .arg(&stats)
        .env("DAYTRADER_ADMIN_TOKEN", &spec.token)
        .env_remove("DAYTRADER_USER_TOKENS")
        .current_dir(&spec.dir);
    let output = procs.output("locust", command).await?;
    if !output.status.success() {
        bail!(
            "Locust failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("reading {} (Locust's statistics)", json.display()))?;
    parse_stats(&text, spec.users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_requests_and_merges_the_histograms() {
        let json = r#"[
          {"name": "GET /api/v1/quotes/{symbol}", "method": "GET", "num_requests": 90, "num_failures": 1,
           "start_time": 100.0, "last_request_timestamp": 109.0,
           "response_times": {"2": 50, "3": 40}, "num_none_requests": 0},
          {"name": "POST /api/v1/commands BUY", "method": "POST", "num_requests": 10, "num_failures": 0,
           "start_time": 101.0, "last_request_timestamp": 110.0,
           "response_times": {"10": 9, "250": 1}}
        ]"#;
        let run = parse_stats(json, 20).unwrap();
        assert_eq!((run.requests, run.failures, run.users), (100, 1, 20));
        assert_eq!(run.duration_s, 10.0);
        assert_eq!(run.requests_per_s, 10.0);
        assert_eq!((run.median_ms, run.p95_ms, run.p99_ms), (2.0, 10.0, 10.0));
        assert_eq!(run.by_request[0].name, "GET /api/v1/quotes/{symbol}");
        assert_eq!(run.by_request[0].median_ms, 2.0);
        assert_eq!(run.by_request[1].median_ms, 10.0);
        assert!(parse_stats("[]", 1).is_err());
    }
}
