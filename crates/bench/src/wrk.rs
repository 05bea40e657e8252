//! HTTP load with wrk: the ceiling (`/healthz`) and the cached reads.
//!
//! Every run goes through the same Lua script, which rotates over a list of
//! paths and prints its results as one JSON line. So the ceiling and the
//! reads it is compared with cost wrk the same per request, and nothing
//! depends on the layout of wrk's human-readable summary.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use loadgen::LatencySummary;
use serde::Deserialize;

use crate::model::{WrkErrors, WrkRun};
use crate::procs::Procs;

/// What one wrk run asks for.
#[derive(Clone, Debug)]
pub struct WrkSpec {
    pub name: String,
    /// `direct` or `balancer`.
    pub via: String,
    /// e.g. `http://127.0.0.1:19900`.
    pub base_url: String,
    /// Request paths, taken in turn.
    pub paths: Vec<String>,
    /// Sent as a bearer token when given.
    pub token: Option<String>,
    pub connections: u32,
    pub threads: u32,
    pub duration: Duration,
    /// How the report names the request, e.g. `GET /api/v1/quotes/{symbol}`.
    pub request: String,
}

/// The marker of the script's result line.
const MARKER: &str = "BENCH-JSON ";

/// The Lua script for `paths` and `token`.
pub fn lua_script(paths: &[String], token: Option<&str>) -> String {
    let quote = |s: &str| {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let list = paths
        .iter()
        .map(|p| quote(p))
        .collect::<Vec<_>>()
        .join(", ");
    let auth = token.map_or_else(String::new, |t| {
        format!(
            "wrk.headers[\"Authorization\"] = {}\n",
            quote(&format!("Bearer {t}"))
        )
    });
    format!(
        r#"-- Written by daytrader-bench for one run; rotates over the paths.
local paths = {{ {list} }}
{auth}local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{MARKER}{{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}},"latency_us":{{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}}}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"#
    )
}

#[derive(Debug, Deserialize)]
struct Output {
    requests: u64,
    duration_us: u64,
    bytes: u64,
    errors: WrkErrors,
    latency_us: LatencyUs,
}

#[derive(Debug, Deserialize)]
struct LatencyUs {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

/// Reads the script's result line out of wrk's output.
pub fn parse_output(spec: &WrkSpec, stdout: &str) -> anyhow::Result<WrkRun> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(MARKER))
        .context("wrk printed no result line (did the script run?)")?;
    let out: Output = serde_json::from_str(line).context("wrk's result line")?;
    let seconds = out.duration_us as f64 / 1e6;
    if seconds <= 0.0 {
        bail!("wrk ran for no time");
    }
    let ms = |us: f64| us / 1000.0;
    Ok(WrkRun {
        name: spec.name.clone(),
        request: spec.request.clone(),
        via: spec.via.clone(),
        connections: spec.connections,
        threads: spec.threads,
        duration_s: seconds,
        requests: out.requests,
        requests_per_s: out.requests as f64 / seconds,
        bytes_per_s: out.bytes as f64 / seconds,
        latency_ms: LatencySummary {
            p50: ms(out.latency_us.p50),
            p90: ms(out.latency_us.p90),
            p99: ms(out.latency_us.p99),
            max: ms(out.latency_us.max),
            mean: ms(out.latency_us.mean),
        },
        errors: out.errors,
    })
}

/// Runs wrk once. The script (which holds the token) is written with
/// owner-only permissions and removed afterwards.
pub async fn run(procs: &Procs, spec: &WrkSpec, dir: &Path) -> anyhow::Result<WrkRun> {
    let script = dir.join(format!("{}.lua", spec.name));
    write_private(&script, &lua_script(&spec.paths, spec.token.as_deref()))?;
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg(format!("-t{}", spec.threads))
        .arg(format!("-c{}", spec.connections))
        .arg(format!("-d{}s", spec.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&script)
        .arg(&spec.base_url);
    let output = procs.output(&format!("wrk-{}", spec.name), command).await;
    let _ = std::fs::remove_file(&script);
    let output = output?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_output(spec, &stdout)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WrkSpec {
        WrkSpec {
            name: "read-quote".into(),
            via: "balancer".into(),
            base_url: "http://127.0.0.1:1".into(),
            paths: vec!["/api/v1/quotes/ABC".into()],
            token: Some("t".into()),
            connections: 10,
            threads: 2,
            duration: Duration::from_secs(3),
            request: "GET /api/v1/quotes/{symbol}".into(),
        }
    }

    #[test]
    fn the_script_rotates_paths_and_sends_the_token() {
        let script = lua_script(&["/a".into(), "/b\"c".into()], Some("s3cr\\t"));
        assert!(
            script.contains(r#"local paths = { "/a", "/b\"c" }"#),
            "{script}"
        );
        assert!(
            script.contains(r#"wrk.headers["Authorization"] = "Bearer s3cr\\t""#),
            "{script}"
        );
        assert!(!lua_script(&["/healthz".into()], None).contains("Authorization"));
    }

    #[test]
    fn reads_the_result_line() {
        let stdout = "Running 3s test @ http://127.0.0.1:1\n  2 threads and 10 connections\nBENCH-JSON {\"requests\":30000,\"duration_us\":3000000,\"bytes\":3000000,\"errors\":{\"connect\":0,\"read\":0,\"write\":0,\"status\":2,\"timeout\":1},\"latency_us\":{\"p50\":250,\"p90\":500,\"p99\":1500,\"max\":9000,\"mean\":300.5}}\n";
        let run = parse_output(&spec(), stdout).unwrap();
        assert_eq!(run.requests, 30000);
        assert_eq!(run.requests_per_s, 10000.0);
        assert_eq!(run.bytes_per_s, 1e6);
        assert_eq!(run.latency_ms.p99, 1.5);
        assert_eq!(run.latency_ms.mean, 0.3005);
        assert_eq!(run.errors.total(), 3);
        assert!(parse_output(&spec(), "no line").is_err());
    }
}
