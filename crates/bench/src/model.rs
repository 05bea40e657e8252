//! What a benchmark run measured: the shape of `bench/report.json`.
//!
//! The sections hold what was measured, as measured; [`BenchReport::finish`]
//! derives from them the headline figures (each with its ratio to a ceiling
//! of the same run) and the check against DESIGN.md's targets. Keeping the
//! derivation a pure function of the measurements means a report can be
//! re-rendered, or its figures recomputed, without running anything again.

use std::collections::BTreeMap;

use loadgen::{LatencySummary, Report};
use serde::{Deserialize, Serialize};

use crate::targets::{self, TargetCheck};

/// Bumped when a field changes meaning, so that tools comparing reports
/// across runs can tell.
pub const SCHEMA: u32 = 1;

/// Ceiling names: `/healthz` with wrk, straight to one instance or through
/// the balancer, with as many connections as a 100-user replay has, or as
/// the 10-client read test has.
pub const DIRECT: &str = "direct";
pub const BALANCER: &str = "balancer";
pub const DIRECT_C10: &str = "direct-c10";
pub const BALANCER_C10: &str = "balancer-c10";

/// Replay names; figures and targets find their runs by these.
pub const EMBEDDED_GENERATED: &str = "embedded-generated";
pub const EMBEDDED_COURSE: &str = "embedded-course";
pub const CLUSTER_GENERATED: &str = "cluster-generated";
pub const CLUSTER_COURSE: &str = "cluster-course";
pub const SLOW_QUOTE: &str = "cluster-slow-quote";
pub const HALF_LOAD: &str = "cluster-half-load";
pub const EMBEDDED_HALF_LOAD: &str = "embedded-half-load";
/// The generated workload of 1,200 users.
pub const EMBEDDED_MANY_USERS: &str = "embedded-generated-1200";
pub const CLUSTER_MANY_USERS: &str = "cluster-generated-1200";
/// The course's 10-user file through the balancer: 10 connections.
pub const CLUSTER_COURSE_10: &str = "cluster-course-10";
/// The replay with N instances is `cluster-N-instances`; three instances
/// is [`CLUSTER_GENERATED`] itself.
pub fn scaling_name(instances: u32) -> String {
    if instances == 3 {
        CLUSTER_GENERATED.to_owned()
    } else {
        format!(
            "cluster-{instances}-instance{}",
            if instances == 1 { "" } else { "s" }
        )
    }
}

/// Cached-read runs.
pub const READ_QUOTE: &str = "read-quote";
pub const READ_SUMMARY: &str = "read-summary";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub schema: u32,
    /// `quick` (a smoke run, small workloads) or `full`.
    pub mode: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub duration_s: f64,
    pub machine: Machine,
    pub git: GitInfo,
    /// Tool name to its version line.
    pub versions: BTreeMap<String, String>,
    pub settings: Settings,
    pub ceiling: Vec<WrkRun>,
    pub replays: Vec<ReplayRun>,
    pub cached_reads: Vec<WrkRun>,
    pub dumplogs: Vec<DumplogRun>,
    pub locust: Option<LocustRun>,
    pub profile: Option<Profile>,
    /// Derived: every headline figure with its ratio to its ceiling.
    pub figures: Vec<Figure>,
    /// Derived: DESIGN.md's targets, met or not.
    pub targets: Vec<TargetCheck>,
    /// Steps skipped or failed, and why.
    pub notes: Vec<Note>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    pub cores: u32,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
    /// The 1-minute load average when the run started and ended: other
    /// work on a shared machine shows here first.
    pub load_before: f64,
    pub load_after: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    /// Uncommitted changes in the working tree when the run started.
    pub dirty: bool,
}

/// The sizes and durations this run used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub quick: bool,
    /// The cluster's base port (balancer on it, instance i on port + i).
    pub port: u16,
    pub wrk_seconds: u64,
    /// Commands in the generated workload (100 users).
    pub generated_commands: usize,
    /// The course file replayed, when present, and how many of its
    /// commands (a quick run takes the first ones only).
    pub course_file: Option<String>,
    pub course_commands: Option<usize>,
    pub half_load_seconds: u64,
    /// The sizes of the log at the two DUMPLOGs.
    pub dumplog_rows: Vec<u64>,
    pub locust_users: u32,
    pub locust_seconds: u64,
    /// The DayTrader settings found in the environment (the instances
    /// inherit them), as NAME=value; secrets are left out.
    pub environment: Vec<String>,
}

/// One wrk run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WrkRun {
    pub name: String,
    /// What it asked for, e.g. `GET /healthz`.
    pub request: String,
    /// `direct` (one instance) or `balancer`.
    pub via: String,
    pub connections: u32,
    pub threads: u32,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub bytes_per_s: f64,
    pub latency_ms: LatencySummary,
    pub errors: WrkErrors,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrkErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Answers other than 2xx or 3xx.
    pub status: u64,
    pub timeout: u64,
}

impl WrkErrors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

/// One replay of a workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayRun {
    pub name: String,
    /// `embedded` or `cluster`.
    pub deployment: String,
    /// Instances behind the balancer; 1 for the embedded server.
    pub instances: u32,
    /// How the workload was made: the generator's arguments or a file.
    pub workload: String,
    /// The built-in quote server's latency profile: `none` or `legacy`.
    pub quote_latency: String,
    pub report: Report,
    /// CPU seconds each process used while the replay ran.
    pub cpu: Vec<ProcessCpu>,
}

/// CPU time of a process (or a group of them) over a measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessCpu {
    pub name: String,
    pub cpu_s: f64,
    /// Of all the machine's CPU time in the window (cores x seconds).
    pub share: f64,
}

/// One DUMPLOG of the whole system's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DumplogRun {
    pub name: String,
    /// `sqlite` or `postgresql`.
    pub store: String,
    /// Rows in the audit log (one per command) when it was dumped.
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub rows_per_s: f64,
    /// The server's resident memory just before the DUMPLOG, the most it
    /// reached during it, and the difference.
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_growth_mb: f64,
    /// (seconds since the request, resident MB), for the plot.
    pub samples: Vec<(f64, f64)>,
}

/// A headless Locust run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocustRun {
    pub users: u32,
    pub duration_s: f64,
    pub requests: u64,
    pub failures: u64,
    pub requests_per_s: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub by_request: Vec<LocustEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocustEntry {
    pub name: String,
    pub method: String,
    pub requests: u64,
    pub failures: u64,
    pub median_ms: f64,
}

/// Where the CPU went during a profiled cluster replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The replay that was profiled (run again under perf, so that perf's
    /// own cost does not touch the measured figures).
    pub replay: String,
    pub seconds: f64,
    /// Commands per second under perf.
    pub throughput_per_s: f64,
    /// CPU by process, from /proc, over the profiled replay.
    pub processes: Vec<ProcessCpu>,
    /// The instances' hottest functions (self time, share of the
    /// instances' samples).
    pub hot_functions: Vec<HotFunction>,
    /// The instances' samples by library or crate.
    pub by_component: Vec<HotFunction>,
    /// PostgreSQL's hottest functions (all its processes).
    pub postgres_hot: Vec<HotFunction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HotFunction {
    pub name: String,
    /// Percent of the instances' samples.
    pub percent: f64,
}

/// A headline figure and where it stands against its ceiling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub id: String,
    pub label: String,
    pub value: f64,
    pub unit: String,
    /// The ceiling run it is compared with; `None` for a figure that is
    /// not a rate or a latency (memory).
    pub ceiling: Option<String>,
    /// For a rate, value / the ceiling's requests per second; for a
    /// latency, value / the ceiling's latency at the same percentile.
    pub ratio: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub step: String,
    /// `skipped` (not possible here, e.g. no course file) or `failed`.
    pub kind: String,
    pub message: String,
}

impl BenchReport {
    pub fn replay(&self, name: &str) -> Option<&ReplayRun> {
        self.replays.iter().find(|r| r.name == name)
    }

    pub fn ceiling(&self, name: &str) -> Option<&WrkRun> {
        self.ceiling.iter().find(|r| r.name == name)
    }

    pub fn cached_read(&self, name: &str) -> Option<&WrkRun> {
        self.cached_reads.iter().find(|r| r.name == name)
    }

    /// Whether a step failed (a skip is not a failure).
    pub fn failed(&self) -> bool {
        self.notes.iter().any(|n| n.kind == "failed")
    }

    /// Derives the figures and the target checks from the measurements.
    pub fn finish(&mut self) {
        self.figures = figures(self);
        self.targets = targets::check(self);
    }

    /// The replays by instance count, for the scaling table and plot.
    pub fn scaling(&self) -> Vec<(u32, &ReplayRun)> {
        (1..=3)
            .filter_map(|n| self.replay(&scaling_name(n)).map(|r| (n, r)))
            .collect()
    }
}

/// The ceiling a figure is judged against: the same path (one instance, or
/// the balancer) with the same number of connections.
pub fn ceiling_for_replay(replay: &ReplayRun) -> &'static str {
    match (replay.deployment.as_str(), replay.name.as_str()) {
        (_, HALF_LOAD | CLUSTER_COURSE_10) => BALANCER_C10,
        (_, EMBEDDED_HALF_LOAD) => DIRECT_C10,
        ("embedded", _) => DIRECT,
        _ => BALANCER,
    }
}

fn figures(report: &BenchReport) -> Vec<Figure> {
    let mut out = Vec::new();
    let rate = |id: &str, label: String, value: f64, unit: &str, ceiling: &str| Figure {
        id: id.to_owned(),
        label,
        value,
        unit: unit.to_owned(),
        ceiling: Some(ceiling.to_owned()),
        ratio: report
            .ceiling(ceiling)
            .filter(|c| c.requests_per_s > 0.0)
            .map(|c| value / c.requests_per_s),
    };
    let latency =
        |id: &str, label: String, value: f64, ceiling: &str, pick: fn(&LatencySummary) -> f64| {
            Figure {
                id: id.to_owned(),
                label,
                value,
                unit: "ms".to_owned(),
                ceiling: Some(ceiling.to_owned()),
                ratio: report
                    .ceiling(ceiling)
                    .map(|c| pick(&c.latency_ms))
                    .filter(|&c| c > 0.0)
                    .map(|c| value / c),
            }
        };

    for c in &report.ceiling {
        let reference = if c.name.ends_with("c10") {
            BALANCER_C10
        } else {
            BALANCER
        };
        out.push(rate(
            &format!("ceiling.{}", c.name),
            format!(
                "hello world (/healthz), {}, {} connections",
                c.via, c.connections
            ),
            c.requests_per_s,
            "requests/s",
            reference,
        ));
    }
    for r in &report.replays {
        let ceiling = ceiling_for_replay(r);
        out.push(rate(
            &format!("replay.{}.throughput", r.name),
            format!("{}: throughput", r.name),
            r.report.throughput_per_s,
            "commands/s",
            ceiling,
        ));
        out.push(latency(
            &format!("replay.{}.p99", r.name),
            format!("{}: p99 latency", r.name),
            r.report.latency_ms.p99,
            ceiling,
            |l| l.p99,
        ));
    }
    for c in &report.cached_reads {
        out.push(rate(
            &format!("reads.{}", c.name),
            format!(
                "cached read {}, {} clients, through the balancer",
                c.request, c.connections
            ),
            c.requests_per_s,
            "requests/s",
            BALANCER_C10,
        ));
        out.push(latency(
            &format!("reads.{}.p99", c.name),
            format!("cached read {}: p99 latency", c.request),
            c.latency_ms.p99,
            BALANCER_C10,
            |l| l.p99,
        ));
    }
    if let (Some(slow), Some(instant)) =
        (report.replay(SLOW_QUOTE), report.replay(CLUSTER_GENERATED))
        && instant.report.throughput_per_s > 0.0
    {
        out.push(Figure {
            id: "slow-quote.ratio".to_owned(),
            label: "slow-quote throughput / instant-quote throughput".to_owned(),
            value: slow.report.throughput_per_s / instant.report.throughput_per_s,
            unit: "ratio".to_owned(),
            ceiling: None,
            ratio: None,
        });
    }
    for d in &report.dumplogs {
        out.push(Figure {
            id: format!("dumplog.{}.mb_per_s", d.name),
            label: format!(
                "DUMPLOG {} ({} rows): MB/s",
                d.name,
                crate::render::thousands(d.rows as f64)
            ),
            value: d.mb_per_s,
            unit: "MB/s".to_owned(),
            ceiling: None,
            ratio: None,
        });
        out.push(rate(
            &format!("dumplog.{}.rows_per_s", d.name),
            format!(
                "DUMPLOG {} ({} rows): log rows/s",
                d.name,
                crate::render::thousands(d.rows as f64)
            ),
            d.rows_per_s,
            "rows/s",
            DIRECT,
        ));
        out.push(Figure {
            id: format!("dumplog.{}.rss_growth", d.name),
            label: format!(
                "DUMPLOG {} ({} rows): memory growth",
                d.name,
                crate::render::thousands(d.rows as f64)
            ),
            value: d.rss_growth_mb,
            unit: "MB".to_owned(),
            ceiling: None,
            ratio: None,
        });
    }
    if let Some(l) = &report.locust {
        out.push(rate(
            "locust.rps",
            format!(
                "Locust, {} simulated traders, through the balancer",
                l.users
            ),
            l.requests_per_s,
            "requests/s",
            BALANCER,
        ));
    }
    out
}
